//! The simulated exchange. (Placeholder: filled by the simulator work.)

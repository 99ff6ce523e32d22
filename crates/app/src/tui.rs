//! The terminal dashboard. (Placeholder: filled by the engine work.)

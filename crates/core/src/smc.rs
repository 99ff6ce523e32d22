//! Smart-Money-Concepts detectors, streaming and causal. (Placeholder: filled by the SMC work.)

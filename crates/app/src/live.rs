//! The live pipeline. (Placeholder: filled by the engine work.)

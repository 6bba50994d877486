//! Elastic detection-rules loader and EQL engine (placeholder; being written).

//! Tables (comfy-table).

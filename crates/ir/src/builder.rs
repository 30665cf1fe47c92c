//! Builder API (in progress).
/// Builder.
pub struct Builder;

//! Wire formats of the protocols the gateway speaks.

pub mod json;
pub mod openai;

//! (being written by the activation helper)

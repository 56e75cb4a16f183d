//! Runs a plan: phases in order, automated steps concurrently (bounded per system), manual steps
//! through a prompter, everything journaled.

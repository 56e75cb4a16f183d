//! Progress of a run: bars on a terminal, plain lines otherwise.

//! Departure + runbook → an ordered, validated plan. No I/O.

//! The interactive checklist for manual steps.

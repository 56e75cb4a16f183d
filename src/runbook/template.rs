//! `{{ user.email }}`-style templates.

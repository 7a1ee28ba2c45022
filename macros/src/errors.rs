//! The one error sink of every attribute: each stage pushes its mistakes
//! here and goes on, and the boundary emits them all at once, beside the
//! user's item, so one mistake does not hide or cascade into others.
//!
//! It takes darling's errors (the attribute parser, [`crate::attr`], reads
//! values with darling and its `Error::multiple`) and syn's errors (the
//! checks over the user's code). It keeps them as one combined
//! `syn::Error`: a `darling::Error` holds a single span, so turning syn's
//! errors into darling's would shorten every underline that spans several
//! tokens (`#[airssys::host_fn]`, a whole parameter type) to its first
//! token; darling's own `write_errors` converts the same way.

use proc_macro2::TokenStream;

/// Every mistake found so far, in the order found.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds a mistake (a `syn::Error` or a `darling::Error`, each possibly
    /// holding several).
    pub(crate) fn push(&mut self, error: impl Into<syn::Error>) {
        let error = error.into();
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Whether there is none.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The mistakes as `compile_error!` invocations (empty when none).
    pub(crate) fn into_compile_errors(self) -> TokenStream {
        self.0.map(|e| e.into_compile_error()).unwrap_or_default()
    }

    /// The messages, in order.
    #[cfg(test)]
    pub(crate) fn messages(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|e| e.clone().into_iter().map(|e| e.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    #[test]
    fn keeps_every_mistake_of_either_kind_in_order() {
        let mut errors = Errors::default();
        assert!(errors.is_empty());
        errors.push(syn::Error::new(Span::call_site(), "first"));
        errors.push(darling::Error::multiple(vec![
            darling::Error::custom("second"),
            darling::Error::custom("third"),
        ]));
        errors.push(darling::Error::custom("fourth"));
        assert_eq!(errors.messages(), ["first", "second", "third", "fourth"]);
        let out = errors.into_compile_errors().to_string();
        assert_eq!(out.matches("compile_error").count(), 4, "{out}");
    }
}

//! The contract as the host macros see it: interfaces and host functions
//! with their Rust names and the model's structured WIT types (the
//! contract itself comes from [`crate::contract_source`]).

use airssys_contract::capability::{Action, Domain};
use airssys_contract::model::{
    Contract, HostFunction, NamedType, NamedTypeKind, Requirement, TemplatePart, WitType,
};
use airssys_contract::naming::Bindings;

/// One interface of the contract.
#[derive(Debug, Clone)]
pub(crate) struct WitInterface {
    /// `airssys:core/storage@1.0.0`.
    pub(crate) qualified: String,
    /// Its host functions.
    pub(crate) functions: Vec<WitFunction>,
}

/// A host function, with the names wasmtime `bindgen!` gives it.
#[derive(Debug, Clone)]
pub(crate) struct WitFunction {
    /// WIT name, e.g. `get` or `[method]bucket.get`.
    pub(crate) wit_name: String,
    /// The resource of a method, static function or constructor.
    pub(crate) resource: Option<String>,
    /// The Rust method name in the host trait (`get`, `new`, `open_bucket`).
    pub(crate) rust_name: String,
    /// Parameters, `self` included for methods.
    pub(crate) params: Vec<WitParam>,
    /// The result type, if any.
    pub(crate) result: Option<WitType>,
    /// What the function requires.
    pub(crate) requirement: WitRequirement,
}

/// A parameter of a host function.
#[derive(Debug, Clone)]
pub(crate) struct WitParam {
    /// WIT name (`key`, `self`).
    pub(crate) name: String,
    /// Its type.
    pub(crate) ty: WitType,
}

/// What a host function requires, from its `@capability` line.
#[derive(Debug, Clone)]
pub(crate) enum WitRequirement {
    /// `@capability none`.
    None,
    /// `@capability handle`.
    Handle,
    /// A template such as `kv:read:{self}/{key}`.
    Capability {
        /// The template's domain.
        domain: Domain,
        /// The template's action.
        action: Action,
        /// Its resource parts.
        parts: Vec<TemplatePart>,
        /// The template as written, for messages.
        text: String,
    },
    /// The annotation is broken (the contract's lint says why).
    Invalid,
}

/// `key-name` → `key_name`, with Rust keywords escaped as wasmtime
/// `bindgen!` does (`self` → `self_`, `type` → `type_`).
pub(crate) fn rust_ident(wit: &str) -> String {
    Bindings::Host.ident(wit)
}

/// `bucket-entry` → `BucketEntry`, as wasmtime `bindgen!` names types
/// (`host` → `Host_`).
pub(crate) fn rust_type_name(wit: &str) -> String {
    Bindings::Host.type_name(wit)
}

/// The Rust method name of a WIT function in its host trait.
pub(crate) fn rust_function_name(wit_name: &str) -> String {
    if wit_name.starts_with("[constructor]") {
        return "new".to_owned();
    }
    let plain = wit_name
        .strip_prefix("[method]")
        .or_else(|| wit_name.strip_prefix("[static]"))
        .and_then(|rest| rest.split_once('.').map(|(_, f)| f))
        .unwrap_or(wit_name);
    rust_ident(plain)
}

/// The functions of `interface` (`airssys:core/storage`, with or without
/// `@version`), or the list of known interfaces.
///
/// # Errors
///
/// The qualified names of every interface, when none matches.
pub(crate) fn find_interface(
    contract: &Contract,
    wanted: &str,
) -> Result<WitInterface, Vec<String>> {
    let wanted_plain = wanted.split('@').next().unwrap_or(wanted);
    for interface in contract.interfaces() {
        let qualified = interface.qualified_name();
        let plain = qualified.split('@').next().unwrap_or(&qualified);
        if qualified == wanted || plain == wanted_plain && !wanted.contains('@') {
            return Ok(WitInterface {
                functions: interface.functions.iter().map(view_function).collect(),
                qualified,
            });
        }
    }
    Err(contract
        .interfaces()
        .iter()
        .map(|i| {
            let q = i.qualified_name();
            q.split('@').next().unwrap_or(&q).to_owned()
        })
        .collect())
}

fn view_function(function: &HostFunction) -> WitFunction {
    let requirement = match &function.requirement {
        Requirement::None => WitRequirement::None,
        Requirement::Handle => WitRequirement::Handle,
        Requirement::Capability(t) => WitRequirement::Capability {
            domain: t.domain,
            action: t.action,
            parts: t.resource.clone(),
            text: t.to_string(),
        },
        Requirement::Invalid => WitRequirement::Invalid,
    };
    // The model leaves a method's implicit `self` out; the host trait
    // takes it as `self_: Resource<R>`.
    let receiver = function
        .resource
        .as_ref()
        .filter(|_| function.name.starts_with("[method]"))
        .map(|resource| WitParam {
            name: "self".to_owned(),
            ty: WitType::Borrow(NamedType {
                name: resource.clone(),
                kind: NamedTypeKind::Resource,
            }),
        });
    let params = function.params.iter().map(|p| WitParam {
        name: p.name.clone(),
        ty: p.ty.clone(),
    });
    WitFunction {
        wit_name: function.name.clone(),
        resource: function.resource.clone(),
        rust_name: rust_function_name(&function.name),
        params: receiver.into_iter().chain(params).collect(),
        result: function.result.clone(),
        requirement,
    }
}

/// The model's type for WIT text, read by the contract from a one-function
/// interface that declares `bucket` (a resource), `bucket-entry` (a
/// record), `error` (a variant) and `bytes` (`list<u8>`).
#[cfg(test)]
pub(crate) fn wit_type(text: &str) -> WitType {
    let source = format!(
        "package test:types;\n\
         interface api {{\n\
             resource bucket;\n\
             record bucket-entry {{ key: string }}\n\
             variant error {{ denied(string), other(string) }}\n\
             type bytes = list<u8>;\n\
             f: func(x: {text});\n\
         }}\n"
    );
    let contract = Contract::from_sources(std::path::Path::new("test"), &[("api.wit", &source)])
        .unwrap_or_else(|e| panic!("`{text}` is a WIT type: {e}"));
    let f = contract.function("api", "f").expect("the function `f`");
    f.params[0].ty.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_types_from_the_model() {
        assert_eq!(
            wit_type("result<option<list<u8>>, error>").to_string(),
            "result<option<list<u8>>, error>"
        );
        assert_eq!(wit_type("borrow<bucket>").handle_resource(), Some("bucket"));
    }

    #[test]
    fn names_as_bindgen_does() {
        assert_eq!(rust_ident("open-bucket"), "open_bucket");
        assert_eq!(rust_ident("self"), "self_");
        assert_eq!(rust_ident("type"), "type_");
        assert_eq!(rust_type_name("bucket-entry"), "BucketEntry");
        assert_eq!(rust_type_name("HTTP-error"), "HttpError");
        assert_eq!(rust_function_name("[method]bucket.get-many"), "get_many");
        assert_eq!(rust_function_name("[static]bucket.open"), "open");
        assert_eq!(rust_function_name("[constructor]bucket"), "new");
        assert_eq!(rust_function_name("open"), "open");
    }
}

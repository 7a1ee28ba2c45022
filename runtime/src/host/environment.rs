//! `airssys:core/environment`: the variables the policy offers the
//! component (never the host's own environment), filtered by its
//! `env:read` grants.

use airssys_contract::capability::{Action, Domain};
use airssys_contract::guard::HostFnGuard;

use super::bindings::airssys::core::environment::{Error, Host, KeyValue};
use super::state::HostState;

static GET_VAR: HostFnGuard =
    HostFnGuard::new("airssys:core/environment#get-var", "env:read", Domain::Env, Action::Read);

impl Host for HostState {
    fn get_var(&mut self, name: String) -> wasmtime::Result<Result<Option<String>, Error>> {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Ok(Err(Error::InvalidInput(format!(
                "`{}` is not a variable name (empty, or contains `=` or NUL)",
                name.escape_debug()
            ))));
        }
        if let Err(denial) = GET_VAR.authorize(self, &[&name]) {
            return Ok(Err(Error::Denied(denial.into_message())));
        }
        Ok(Ok(self.info.env.get(&name).cloned()))
    }

    fn list_vars(&mut self) -> wasmtime::Result<Result<Vec<KeyValue>, Error>> {
        Ok(Ok(self
            .info
            .env
            .iter()
            .filter(|(k, _)| self.is_granted(Domain::Env, Action::Read, k))
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()))
    }
}

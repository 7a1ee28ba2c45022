//! `airssys:core/capabilities`: a component reads its own effective grant.

use airssys_contract::capability::Request;

use super::bindings::airssys::core::capabilities::{Error, Host};
use super::state::HostState;

impl Host for HostState {
    fn granted(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self
            .info
            .grants
            .allows()
            .iter()
            .map(ToString::to_string)
            .collect())
    }

    fn check(&mut self, request: String) -> wasmtime::Result<Result<bool, Error>> {
        Ok(match Request::parse(&request) {
            Ok(request) => Ok(self.info.grants.check(&request).is_allowed()),
            Err(error) => Err(Error::InvalidInput(format!("`{request}`: {error}"))),
        })
    }
}

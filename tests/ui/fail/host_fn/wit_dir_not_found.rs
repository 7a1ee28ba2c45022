// One mistake: `wit = ".."` names a directory that does not exist.

include!("support/host_scaffold.rs");

#[airssys::host_impl(interface = "airssys:core/storage", wit = "fixtures/no-such-wit")]
impl storage::HostBucket for State {
    #[airssys::host_fn(capability = "kv:read:counter/**")]
    fn get(&mut self, self_: Resource<Bucket>, key: String) -> Result<Option<Vec<u8>>, Error> {
        let _ = (self_, key);
        Ok(None)
    }

    #[airssys::host_fn(capability = "kv:write:counter/**")]
    fn set(&mut self, self_: Resource<Bucket>, key: String, value: Vec<u8>) -> Result<(), Error> {
        let _ = (self_, key, value);
        Err(Error::Other(String::new()))
    }
}

fn main() {}

// One mistake: `open` is `@capability none`: nothing to guard.

include!("support/host_scaffold.rs");

#[airssys::host_impl(interface = "airssys:core/storage")]
impl storage::Host for State {
    #[airssys::host_fn(capability = "kv:read:**")]
    fn open(&mut self, name: String) -> Result<Resource<Bucket>, Error> {
        let _ = name;
        Err(Error::Other(String::new()))
    }
}

fn main() {}

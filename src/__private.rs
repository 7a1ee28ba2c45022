//! Paths used by macro-generated code. Not a public API: names here change
//! without notice.

pub use airssys_contract as contract;

/// The wit-bindgen runtime that generated guest bindings use
/// (`runtime_path = ::airssys::__private::wit_bindgen::rt`).
pub use wit_bindgen;

/// One marker trait per capability `domain:action`.
///
/// `#[airssys::component]` implements the marker of each pair a component
/// declares (in `requires` or `optional`); a gated host function has the
/// bound `C: caps::<Domain><Action>`, so calling it from a component that
/// did not declare the pair fails to compile at the call site with the
/// trait's message.
pub mod caps {
    macro_rules! markers {
        ($($name:ident => $cap:literal, $message:literal, $note:literal;)*) => {$(
            #[doc = concat!("Implemented by components that declare a `", $cap, "` capability.")]
            #[diagnostic::on_unimplemented(
                message = $message,
                label = "this call needs a declared capability",
                note = $note
            )]
            pub trait $name {}
        )*};
    }

    markers! {
        FsRead => "fs:read",
            "component `{Self}` does not declare capability `fs:read`",
            "add a `fs:read:<path pattern>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        FsWrite => "fs:write",
            "component `{Self}` does not declare capability `fs:write`",
            "add a `fs:write:<path pattern>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        FsCreate => "fs:create",
            "component `{Self}` does not declare capability `fs:create`",
            "add a `fs:create:<path pattern>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        FsDelete => "fs:delete",
            "component `{Self}` does not declare capability `fs:delete`",
            "add a `fs:delete:<path pattern>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        FsList => "fs:list",
            "component `{Self}` does not declare capability `fs:list`",
            "add a `fs:list:<path pattern>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        FsStat => "fs:stat",
            "component `{Self}` does not declare capability `fs:stat`",
            "add a `fs:stat:<path pattern>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        NetConnect => "net:connect",
            "component `{Self}` does not declare capability `net:connect`",
            "add a `net:connect:<host>:<port>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        NetBind => "net:bind",
            "component `{Self}` does not declare capability `net:bind`",
            "add a `net:bind:<host>:<port>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        NetHttp => "net:http",
            "component `{Self}` does not declare capability `net:http`",
            "add a `net:http:<host>:<port>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        KvRead => "kv:read",
            "component `{Self}` does not declare capability `kv:read`",
            "add a `kv:read:<bucket>/<key>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        KvWrite => "kv:write",
            "component `{Self}` does not declare capability `kv:write`",
            "add a `kv:write:<bucket>/<key>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        KvDelete => "kv:delete",
            "component `{Self}` does not declare capability `kv:delete`",
            "add a `kv:delete:<bucket>/<key>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        KvList => "kv:list",
            "component `{Self}` does not declare capability `kv:list`",
            "add a `kv:list:<bucket>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        MsgPublish => "msg:publish",
            "component `{Self}` does not declare capability `msg:publish`",
            "add a `msg:publish:<topic>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        MsgSubscribe => "msg:subscribe",
            "component `{Self}` does not declare capability `msg:subscribe`",
            "add a `msg:subscribe:<topic>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        MsgRequest => "msg:request",
            "component `{Self}` does not declare capability `msg:request`",
            "add a `msg:request:<component>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        LogWrite => "log:write",
            "component `{Self}` does not declare capability `log:write`",
            "add `log:write` to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        ProcSpawn => "proc:spawn",
            "component `{Self}` does not declare capability `proc:spawn`",
            "add a `proc:spawn:<program path>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        ProcSignal => "proc:signal",
            "component `{Self}` does not declare capability `proc:signal`",
            "add a `proc:signal:<program path>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
        EnvRead => "env:read",
            "component `{Self}` does not declare capability `env:read`",
            "add an `env:read:<NAME or PREFIX_*>` capability to `requires` or `optional` in `#[airssys::component(...)]` on `{Self}`";
    }
}

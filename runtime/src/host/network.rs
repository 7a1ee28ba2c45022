//! `airssys:ext/network`: checked, not served yet (run time part 2).
//! Each function runs its `net` capability check, then answers
//! `other("not supported yet")`; no socket is ever created.

use airssys_macros::host_impl;
use wasmtime::component::Resource;

use super::bindings::airssys::ext::network::{
    Datagram, Error, Host, HostPendingConnect, HostPendingDatagram, HostPendingRead,
    HostPendingResponse, HostPendingWrite, HostTcpStream, HostUdpSocket, HttpRequest, HttpResponse,
    PendingConnect, PendingDatagram, PendingRead, PendingResponse, PendingWrite, Pollable,
    TcpStream, UdpSocket,
};
use super::state::HostState;
use super::unsupported::{no_such_handle, not_supported};

fn unsupported<T>(function: &str) -> wasmtime::Result<Result<T, Error>> {
    Ok(Err(Error::Other(not_supported(function))))
}

/// Implements a `pending-*` resource that never exists.
macro_rules! never_pending {
    ($trait:ident, $resource:ty, $output:ty, $name:literal) => {
        impl $trait for HostState {
            fn subscribe(
                &mut self,
                _self_: Resource<$resource>,
            ) -> wasmtime::Result<Resource<Pollable>> {
                no_such_handle($name)
            }
            fn get(
                &mut self,
                _self_: Resource<$resource>,
            ) -> wasmtime::Result<Result<Option<$output>, Error>> {
                unsupported(concat!($name, ".get"))
            }
            fn drop(&mut self, _rep: Resource<$resource>) -> wasmtime::Result<()> {
                Ok(())
            }
        }
    };
}

never_pending!(
    HostPendingConnect,
    PendingConnect,
    Resource<TcpStream>,
    "pending-connect"
);
never_pending!(HostPendingRead, PendingRead, Vec<u8>, "pending-read");
never_pending!(HostPendingWrite, PendingWrite, u64, "pending-write");
never_pending!(
    HostPendingDatagram,
    PendingDatagram,
    Datagram,
    "pending-datagram"
);
never_pending!(
    HostPendingResponse,
    PendingResponse,
    HttpResponse,
    "pending-response"
);

impl HostTcpStream for HostState {
    fn read(
        &mut self,
        _self_: Resource<TcpStream>,
        _max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        unsupported("tcp-stream.read")
    }
    fn write(
        &mut self,
        _self_: Resource<TcpStream>,
        _data: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<PendingWrite>, Error>> {
        unsupported("tcp-stream.write")
    }
    fn shutdown(&mut self, _self_: Resource<TcpStream>) -> wasmtime::Result<Result<(), Error>> {
        unsupported("tcp-stream.shutdown")
    }
    fn drop(&mut self, _rep: Resource<TcpStream>) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[host_impl(interface = "airssys:ext/network", crate = "::airssys_contract")]
impl HostUdpSocket for HostState {
    #[host_fn(capability = "net:connect")]
    fn send_to(
        &mut self,
        self_: Resource<UdpSocket>,
        peer: String,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<PendingWrite>, Error>> {
        let _ = (self_, peer, data);
        unsupported("udp-socket.send-to")
    }
    fn receive(
        &mut self,
        _self_: Resource<UdpSocket>,
        _max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingDatagram>, Error>> {
        unsupported("udp-socket.receive")
    }
    fn local_address(
        &mut self,
        _self_: Resource<UdpSocket>,
    ) -> wasmtime::Result<Result<String, Error>> {
        unsupported("udp-socket.local-address")
    }
    fn drop(&mut self, _rep: Resource<UdpSocket>) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[host_impl(interface = "airssys:ext/network", crate = "::airssys_contract")]
impl Host for HostState {
    #[host_fn(capability = "net:connect")]
    fn connect_tcp(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PendingConnect>, Error>> {
        let _ = address;
        unsupported("network.connect-tcp")
    }
    #[host_fn(capability = "net:bind")]
    fn bind_udp(
        &mut self,
        local_address: String,
    ) -> wasmtime::Result<Result<Resource<UdpSocket>, Error>> {
        let _ = local_address;
        unsupported("network.bind-udp")
    }
    fn open_udp(&mut self) -> wasmtime::Result<Result<Resource<UdpSocket>, Error>> {
        unsupported("network.open-udp")
    }
    #[host_fn(capability = "net:http")]
    fn send_http(
        &mut self,
        authority: String,
        request: HttpRequest,
    ) -> wasmtime::Result<Result<Resource<PendingResponse>, Error>> {
        let _ = (authority, request);
        unsupported("network.send-http")
    }
}

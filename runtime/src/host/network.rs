//! `airssys:ext/network`: checked, not served yet (run time part 2).
//! Each factory runs its `net` capability check, then answers
//! `other("not supported yet")`; no socket is ever created.

use wasmtime::component::Resource;

use super::bindings::airssys::ext::network::{
    Datagram, Error, Host, HostPendingConnect, HostPendingDatagram, HostPendingRead,
    HostPendingResponse, HostPendingWrite, HostTcpStream, HostUdpSocket, HttpRequest, HttpResponse,
    PendingConnect, PendingDatagram, PendingRead, PendingResponse, PendingWrite, Pollable,
    TcpStream, UdpSocket,
};
use super::state::HostState;
use super::unsupported::{no_such_handle, not_supported, refusal_into};

const INTERFACE: &str = "airssys:ext/network";

refusal_into!(Error);

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

/// Implements a `pending-*` resource that never exists.
macro_rules! never_pending {
    ($trait:ident, $resource:ty, $output:ty, $name:literal) => {
        impl $trait for HostState {
            fn subscribe(&mut self, _: Resource<$resource>) -> wasmtime::Result<Resource<Pollable>> {
                no_such_handle($name)
            }
            fn get(&mut self, _: Resource<$resource>) -> Outcome<Option<$output>> {
                Ok(Err(Error::Other(not_supported($name))))
            }
            fn drop(&mut self, _: Resource<$resource>) -> wasmtime::Result<()> {
                Ok(())
            }
        }
    };
}

never_pending!(HostPendingConnect, PendingConnect, Resource<TcpStream>, "pending-connect");
never_pending!(HostPendingRead, PendingRead, Vec<u8>, "pending-read");
never_pending!(HostPendingWrite, PendingWrite, u64, "pending-write");
never_pending!(HostPendingDatagram, PendingDatagram, Datagram, "pending-datagram");
never_pending!(HostPendingResponse, PendingResponse, HttpResponse, "pending-response");

impl HostTcpStream for HostState {
    fn read(&mut self, _: Resource<TcpStream>, _max: u32) -> Outcome<Resource<PendingRead>> {
        Ok(Err(Error::Other(not_supported("tcp-stream"))))
    }
    fn write(&mut self, _: Resource<TcpStream>, _data: Vec<u8>) -> Outcome<Resource<PendingWrite>> {
        Ok(Err(Error::Other(not_supported("tcp-stream"))))
    }
    fn shutdown(&mut self, _: Resource<TcpStream>) -> Outcome<()> {
        Ok(Err(Error::Other(not_supported("tcp-stream"))))
    }
    fn drop(&mut self, _: Resource<TcpStream>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl HostUdpSocket for HostState {
    fn send_to(&mut self, _: Resource<UdpSocket>, _peer: String, _data: Vec<u8>) -> Outcome<Resource<PendingWrite>> {
        Ok(Err(Error::Other(not_supported("udp-socket"))))
    }
    fn receive(&mut self, _: Resource<UdpSocket>, _max: u32) -> Outcome<Resource<PendingDatagram>> {
        Ok(Err(Error::Other(not_supported("udp-socket"))))
    }
    fn local_address(&mut self, _: Resource<UdpSocket>) -> Outcome<String> {
        Ok(Err(Error::Other(not_supported("udp-socket"))))
    }
    fn drop(&mut self, _: Resource<UdpSocket>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl Host for HostState {
    fn connect_tcp(&mut self, address: String) -> Outcome<Resource<PendingConnect>> {
        Ok(Err(self.unsupported(INTERFACE, "connect-tcp", &[("address", &address)]).into()))
    }
    fn bind_udp(&mut self, local_address: String) -> Outcome<Resource<UdpSocket>> {
        Ok(Err(self
            .unsupported(INTERFACE, "bind-udp", &[("local-address", &local_address)])
            .into()))
    }
    fn open_udp(&mut self) -> Outcome<Resource<UdpSocket>> {
        Ok(Err(self.unsupported(INTERFACE, "open-udp", &[]).into()))
    }
    fn send_http(&mut self, authority: String, _request: HttpRequest) -> Outcome<Resource<PendingResponse>> {
        Ok(Err(self.unsupported(INTERFACE, "send-http", &[("authority", &authority)]).into()))
    }
}

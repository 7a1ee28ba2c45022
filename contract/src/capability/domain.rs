//! The seven capability domains and the actions each one admits.

use std::fmt;

/// A capability domain: the first segment of `domain:action[:resource]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// Filesystem access beneath host-mapped directories.
    Fs,
    /// Network access: TCP/UDP peers, listening sockets, HTTP requests.
    Net,
    /// Key-value storage buckets.
    Kv,
    /// Messaging between components.
    Msg,
    /// Writing log records.
    Log,
    /// Spawning and signalling child processes.
    Proc,
    /// Reading environment variables.
    Env,
}

/// An action within a [`Domain`]: the second segment of a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `fs:read`, `kv:read`, `env:read`.
    Read,
    /// `fs:write`, `kv:write`, `log:write`.
    Write,
    /// `fs:create`.
    Create,
    /// `fs:delete`, `kv:delete`.
    Delete,
    /// `fs:list`, `kv:list`.
    List,
    /// `fs:stat`.
    Stat,
    /// `net:connect`.
    Connect,
    /// `net:bind`.
    Bind,
    /// `net:http`.
    Http,
    /// `msg:publish`.
    Publish,
    /// `msg:subscribe`.
    Subscribe,
    /// `msg:request`.
    Request,
    /// `proc:spawn`.
    Spawn,
    /// `proc:signal`.
    Signal,
}

impl Domain {
    /// Every domain, in the order the documentation lists them.
    pub const ALL: [Domain; 7] = [
        Domain::Fs,
        Domain::Net,
        Domain::Kv,
        Domain::Msg,
        Domain::Log,
        Domain::Proc,
        Domain::Env,
    ];

    /// The domain's name as written in a capability.
    pub const fn as_str(self) -> &'static str {
        match self {
            Domain::Fs => "fs",
            Domain::Net => "net",
            Domain::Kv => "kv",
            Domain::Msg => "msg",
            Domain::Log => "log",
            Domain::Proc => "proc",
            Domain::Env => "env",
        }
    }

    /// Looks a domain up by its name (exact, lower case).
    pub fn from_name(name: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The actions this domain admits, in documentation order.
    pub const fn actions(self) -> &'static [Action] {
        match self {
            Domain::Fs => &[
                Action::Read,
                Action::Write,
                Action::Create,
                Action::Delete,
                Action::List,
                Action::Stat,
            ],
            Domain::Net => &[Action::Connect, Action::Bind, Action::Http],
            Domain::Kv => &[Action::Read, Action::Write, Action::Delete, Action::List],
            Domain::Msg => &[Action::Publish, Action::Subscribe, Action::Request],
            Domain::Log => &[Action::Write],
            Domain::Proc => &[Action::Spawn, Action::Signal],
            Domain::Env => &[Action::Read],
        }
    }

    /// Whether this domain admits `action` (`fs:read` yes, `fs:publish`
    /// no): one table load, no string work (checked on every guarded call
    /// that misses the decision cache).
    #[inline]
    pub(crate) fn admits(self, action: Action) -> bool {
        ADMITS[self as usize][action as usize]
    }

    /// Looks an action of this domain up by name; `None` when the domain
    /// does not admit it (`fs:publish`) or the name is unknown.
    pub fn action(self, name: &str) -> Option<Action> {
        self.actions().iter().copied().find(|a| a.as_str() == name)
    }

    /// The valid action names of this domain joined with `", "`, for error
    /// messages.
    pub fn action_list(self) -> String {
        self.actions()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The valid domain names joined with `", "`, for error messages.
    pub fn name_list() -> String {
        Domain::ALL
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Action {
    /// The action's name as written in a capability.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Create => "create",
            Action::Delete => "delete",
            Action::List => "list",
            Action::Stat => "stat",
            Action::Connect => "connect",
            Action::Bind => "bind",
            Action::Http => "http",
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
            Action::Request => "request",
            Action::Spawn => "spawn",
            Action::Signal => "signal",
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`Domain::admits`] by `[domain][action]`, from [`Domain::actions`].
const ADMITS: [[bool; Action::Signal as usize + 1]; Domain::ALL.len()] = {
    let mut table = [[false; Action::Signal as usize + 1]; Domain::ALL.len()];
    let mut d = 0;
    while d < Domain::ALL.len() {
        let domain = Domain::ALL[d];
        let actions = domain.actions();
        let mut a = 0;
        while a < actions.len() {
            table[domain as usize][actions[a] as usize] = true;
            a += 1;
        }
        d += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Domain::ALL {
            assert_eq!(Domain::from_name(d.as_str()), Some(d));
            for a in d.actions() {
                assert_eq!(d.action(a.as_str()), Some(*a));
            }
        }
        assert_eq!(Domain::from_name("FS"), None);
        assert_eq!(Domain::Fs.action("publish"), None);
        assert_eq!(Domain::Log.action_list(), "write");
    }

    #[test]
    fn the_admits_table_agrees_with_the_action_lists() {
        let every: Vec<Action> = Domain::ALL
            .iter()
            .flat_map(|d| d.actions().iter().copied())
            .collect();
        assert!(every.contains(&Action::Signal), "the table's last column");
        for d in Domain::ALL {
            for a in &every {
                assert_eq!(d.admits(*a), d.actions().contains(a), "{d}:{a}");
            }
        }
    }
}

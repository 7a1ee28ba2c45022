//! `airssys storage recount`: repairs the usage counters of storage over
//! NATS (the JetStream key-value bucket hosts share, docs/nats.md) left
//! high by a host that crashed between charging a write and writing it.

use super::nats::NatsArgs;
use super::run::{Exit, fail};

/// `airssys storage ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Recompute each namespace's usage counter in the NATS key-value
    /// bucket from its entries (compare-and-set), printing before and
    /// after. Run it while no host writes those namespaces.
    Recount(Box<RecountArgs>),
}

/// The options of `airssys storage recount`.
#[derive(Debug, clap::Args)]
pub(crate) struct RecountArgs {
    /// Only this component's namespace (default: every namespace with a
    /// usage counter).
    #[arg(long, value_name = "NAME")]
    component: Option<String>,
    /// The NATS server and its connection options (as `airssys serve`).
    #[command(flatten)]
    nats: NatsArgs,
}

/// Runs `airssys storage ...`; returns the exit code.
pub(crate) fn run(command: Command) -> u8 {
    match command {
        Command::Recount(args) => match recount(&args) {
            Ok(()) => 0,
            Err(code) => code,
        },
    }
}

fn recount(args: &RecountArgs) -> Result<(), Exit> {
    use airssys_runtime::storage::{NatsKvStorage, RecountStep};

    let Some(plan) = args.nats.plan(None)? else {
        return Err(fail(
            2,
            "give the NATS server whose key-value bucket to recount: --nats URL",
        ));
    };
    let shown = plan.shown_url();
    // Storage only: no JetStream streams for messages are needed.
    let link = plan.core_delivery().connect()?;
    let storage = NatsKvStorage::builder(link.broker.client(), link.broker.runtime_handle())
        .op_timeout(std::time::Duration::from_secs(120))
        .open()
        .map_err(|e| fail(2, format_args!("--nats: {e}")))?;
    // Each namespace is printed as it is done, and a long count shows
    // how far it got (stderr): the bucket may hold many.
    let done = storage
        .recount_with(args.component.as_deref(), |step| match step {
            RecountStep::Counting { namespace, entries } => {
                eprintln!(
                    "  counting `{}`: {entries} entries so far",
                    namespace.escape_debug()
                );
            }
            RecountStep::Done(one) => {
                let said = if one.before == one.after {
                    "unchanged"
                } else if one.before > one.after {
                    "was high: repaired"
                } else {
                    "was low: repaired"
                };
                // Names come from the bucket: control characters escaped.
                println!(
                    "  {}: {} -> {} bytes ({said})",
                    one.namespace.escape_debug(),
                    one.before,
                    one.after
                );
            }
            _ => {}
        })
        .map_err(|e| fail(2, format_args!("--nats: {e}")))?;
    println!(
        "recounted {done} namespace(s) of the NATS key-value bucket `{}` ({shown})",
        storage.bucket()
    );
    Ok(())
}

//! Follows scimd's workplace event feed as a booking front-end would: read a page of entries
//! after the last sequence number seen (`GET /t/{tenant}/workplace/v1/events?after=N`, see
//! docs/workplace-api.md, "Feed, audit log, report"), handle each, remember its `seq`, repeat.
//!
//! ```sh
//! WTOKEN=$(scimd token issue --tenant default --scope workplace --label front-end | sed -E 's/.*"token":"([^"]+)".*/\1/')
//! cargo run -p example-feed-follower -- http://127.0.0.1:8080/t/default/workplace/v1 "$WTOKEN" [AFTER]
//! ```
//!
//! The feed is every change of the tenant in commit order with gap-free sequence numbers, so a
//! follower that resumes after the last `seq` it handled never misses an entry, even one a
//! concurrent writer committed late. Keep that number where you keep what you did with the
//! entries (in the same transaction, ideally) and pass it back as `after` on restart. The API
//! has no long-poll parameter: an empty page means "nothing new yet", and the follower waits a
//! moment before asking again.

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// One feed entry: a SCIM change (`User`, `Group`) or a workplace event (`Booking`, ...).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The position in the feed: gap-free, in commit order.
    pub seq: u64,
    /// `User`, `Group`, `Booking`, `Assignment`, `Policies`, `Site`, ...
    pub subject: String,
    /// The id of the thing that changed.
    pub id: String,
    /// `created`, `patched`, `booked`, `cancelled`, ...
    pub op: String,
    /// Who did it: a token's label, or `system` for a cascade.
    pub actor: String,
    /// The request that caused it (a cascade cites the SCIM request behind it).
    pub request_id: Option<String>,
    /// What a workplace event carries (person, resource, times, reason ...).
    pub detail: Option<Value>,
}

/// A page of the feed; `next` is the `after` of the following page.
#[derive(Deserialize)]
struct Page {
    events: Vec<Entry>,
    next: u64,
}

/// A reader of one tenant's feed that remembers where it is.
pub struct Follower {
    agent: ureq::Agent,
    events_url: String,
    authorization: String,
    /// The last `seq` handed out by [`Follower::poll`]; 0 before the first entry.
    pub after: u64,
}

impl Follower {
    /// A follower of the workplace API at `base` (`.../t/{tenant}/workplace/v1`) with a token of
    /// scope `workplace`, resuming after `after`.
    pub fn new(base: &str, token: &str, after: u64) -> Follower {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build();
        Follower {
            agent: config.into(),
            events_url: format!("{}/events", base.trim_end_matches('/')),
            authorization: format!("Bearer {token}"),
            after,
        }
    }

    /// The entries committed after the last one seen (at most 1,000; empty when none).
    pub fn poll(&mut self) -> Result<Vec<Entry>, ureq::Error> {
        let page: Page = self
            .agent
            .get(&self.events_url)
            .header("Authorization", &self.authorization)
            .query("after", self.after.to_string())
            .query("limit", "1000")
            .call()?
            .body_mut()
            .read_json()?;
        self.after = page.next;
        Ok(page.events)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, token, rest @ ..] = args.as_slice() else {
        eprintln!("usage: example-feed-follower WORKPLACE_BASE_URL TOKEN [AFTER]");
        std::process::exit(2);
    };
    let after = rest.first().and_then(|n| n.parse().ok()).unwrap_or(0);
    let mut follower = Follower::new(base, token, after);
    loop {
        match follower.poll() {
            Ok(entries) if entries.is_empty() => std::thread::sleep(Duration::from_secs(1)),
            Ok(entries) => {
                for entry in entries {
                    let detail = entry.detail.map(|d| d.to_string()).unwrap_or_default();
                    println!(
                        "{} {} {} {} by {} {detail}",
                        entry.seq, entry.subject, entry.id, entry.op, entry.actor
                    );
                }
            }
            // A restart, a deploy, a network blip: the position is kept, so retrying loses
            // nothing. A 401 (a revoked token) will not heal, but a front-end would alert, not
            // exit; this example keeps it visible on stderr.
            Err(error) => {
                eprintln!(
                    "feed unavailable ({error}); retrying after {}",
                    follower.after
                );
                std::thread::sleep(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! The typed view of the configuration that the engine runs on: values
//! expanded, converted and checked once at load, so that a bad value stops
//! start-up with `file:line` instead of surprising a session later.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_agents::resolve::ResolveParams;
use sluice_protocols::smtp::BareNewline;

use super::cidr::Cidr;
use super::maincf::MainCf;
use super::mastercf::{self, Protocols};
use super::params::{self, Kind};
use super::{ConfigError, HostFacts};
use crate::smtpd_check::{RelayContext, Restriction};
use crate::user_acl::UserAcl;

/// main.cf, typed. Built by [`super::load`].
#[derive(Clone, Debug)]
pub struct MainParams {
    pub myhostname: String,
    pub mydomain: String,
    pub myorigin: String,
    pub mail_name: String,
    /// Lower-case domains without trailing dot.
    pub mydestination: Vec<String>,
    /// Lower-case domains without trailing dot; an entry also matches its
    /// subdomains (load refuses a parent_domain_matches_subdomains without
    /// relay_domains, which Sluice does not implement).
    pub relay_domains: Vec<String>,
    pub mynetworks: Vec<Cidr>,
    /// As written (`all`, `loopback-only`, addresses, host names).
    pub inet_interfaces: Vec<String>,
    /// The address families inet_protocols enables (and the machine has).
    pub inet_protocols: Protocols,
    /// This host's own addresses per inet_interfaces (for `all`: every
    /// interface address); for permit_inet_interfaces-style checks later.
    pub inet_interface_addrs: Vec<IpAddr>,
    /// Relative paths are resolved against the current directory at load.
    pub queue_directory: PathBuf,
    pub data_directory: PathBuf,
    pub mail_owner: String,
    /// mail_owner's uid, when the system knows that user (resolved at
    /// load: the control socket always lets root and the owner in).
    pub mail_owner_uid: Option<u32>,
    /// The group of the setgid submission program (maildrop's group).
    pub setgid_group: String,
    /// Who may list the queue (`postqueue -p`, `mailq`).
    pub authorized_mailq_users: UserAcl,
    /// Who may flush it (`postqueue -f`, `-s`, `-i`).
    pub authorized_flush_users: UserAcl,
    /// Who may submit mail (`sendmail`, `postdrop`).
    pub authorized_submit_users: UserAcl,
    pub smtpd: SmtpdParams,
    pub hopcount_limit: u32,
    pub header_size_limit: usize,
    /// Resolved: 0 in main.cf means one shard per online CPU.
    pub sluice_shards: usize,
    pub sluice_segment_size: u64,
    /// Bytes of message content smtpd may hold in memory, all shards
    /// together (each shard gets an equal share); 0 = unlimited.
    pub sluice_inflight_memory_limit: u64,
    pub enable_long_queue_ids: bool,
    pub always_add_missing_headers: bool,
    /// anvil's rate window (anvil_rate_time_unit, 60s).
    pub anvil_rate_time_unit: Duration,
}

/// The SMTP server's parameters: main.cf's, or a listener's with its
/// master.cf `-o` overrides applied.
#[derive(Clone, Debug, PartialEq)]
pub struct SmtpdParams {
    pub message_size_limit: u64,
    pub smtpd_recipient_limit: usize,
    pub line_length_limit: usize,
    pub smtpd_timeout: Duration,
    pub smtpd_hard_error_limit: u32,
    pub smtpd_soft_error_limit: u32,
    pub smtpd_junk_command_limit: u32,
    pub smtpd_error_sleep_time: Duration,
    pub smtpd_banner: String,
    pub smtpd_forbid_bare_newline: BareNewline,
    pub smtpd_forbid_unauth_pipelining: bool,
    pub disable_vrfy_command: bool,
    pub relay_restrictions: Vec<Restriction>,
    pub recipient_restrictions: Vec<Restriction>,
    /// anvil's limits (0 = off): smtpd_client_connection_count_limit,
    /// smtpd_client_connection_rate_limit, smtpd_client_message_rate_limit,
    /// smtpd_client_recipient_rate_limit.
    pub client_limits: ClientLimits,
    /// SMTP AUTH: smtpd_sasl_*, smtpd_sender_login_maps (smtpd_tls_auth_only
    /// is `tls.auth_only`).
    pub sasl: super::SaslParams,
    /// STARTTLS and wrapper mode (`smtpd_tls_*`), certificate loaded.
    pub tls: crate::tls::SmtpdTls,
    /// `local_header_rewrite_clients`: whose missing headers are added.
    pub header_rewrite_clients: super::HeaderRewriteClients,
}

/// smtpd's per-client limits, checked against anvil's counts.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientLimits {
    pub connection_count: u32,
    pub connection_rate: u32,
    pub message_rate: u32,
    pub recipient_rate: u32,
    /// smtpd_client_event_limit_exceptions (default $mynetworks): clients
    /// anvil neither counts nor limits.
    pub exceptions: Vec<Cidr>,
}

impl ClientLimits {
    /// Whether smtpd talks to anvil at all (Postfix creates its anvil
    /// client only when a limit is set).
    pub fn any(&self) -> bool {
        self.connection_count > 0
            || self.connection_rate > 0
            || self.message_rate > 0
            || self.recipient_rate > 0
    }

    /// A client in smtpd_client_event_limit_exceptions.
    pub fn exempt(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.exceptions.iter().any(|c| c.contains(addr))
    }

    fn from_main(main: &MainCf) -> Result<ClientLimits, ConfigError> {
        let name = "smtpd_client_event_limit_exceptions";
        let mut exceptions = Vec::new();
        for item in main.get_list(name)? {
            let cidr = Cidr::parse(&item).map_err(|e| {
                let what = match e {
                    // Postfix also takes host names, tables and files here.
                    super::CidrError::BadAddress(_) => format!(
                        "\"{item}\": host names, lookup tables, files and negation are not supported yet; list network blocks"
                    ),
                    other => other.to_string(),
                };
                ConfigError::Syntax {
                    origin: main.origin(name),
                    what: format!("{name}: {what}"),
                }
            })?;
            exceptions.push(cidr);
        }
        Ok(ClientLimits {
            connection_count: main.get_number("smtpd_client_connection_count_limit", 0)?,
            connection_rate: main.get_number("smtpd_client_connection_rate_limit", 0)?,
            message_rate: main.get_number("smtpd_client_message_rate_limit", 0)?,
            recipient_rate: main.get_number("smtpd_client_recipient_rate_limit", 0)?,
            exceptions,
        })
    }
}

impl MainParams {
    /// Builds and checks the typed view. `cwd` anchors relative paths.
    pub fn from_main(
        main: &MainCf,
        facts: &HostFacts,
        cwd: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<MainParams, ConfigError> {
        let (inet_protocols, inet_interface_addrs) = own_addresses(main, facts, warnings)?;
        let myhostname = main.get_str("myhostname")?;
        if myhostname.is_empty() || myhostname.contains(|c: char| c.is_whitespace() || c == ',') {
            return Err(main.bad_value("myhostname", "bad parameter value"));
        }
        let shards = main.get_int("sluice_shards")?;
        let shards_resolved = if shards == 0 {
            facts.online_cpus
        } else {
            usize::try_from(shards)
                .map_err(|_| main.bad_value("sluice_shards", "bad numerical configuration"))?
        };
        if !main
            .get_list("parent_domain_matches_subdomains")?
            .iter()
            .any(|p| p == "relay_domains")
        {
            return Err(main.bad_value(
                "parent_domain_matches_subdomains",
                "relay_domains must stay listed (Sluice always matches relay_domains subdomains; use .domain patterns in relay_domains)",
            ));
        }
        Ok(MainParams {
            mydomain: main.get_str("mydomain")?,
            myorigin: main.get_str("myorigin")?,
            mail_name: main.get_str("mail_name")?,
            mydestination: domain_list(main, "mydestination")?,
            relay_domains: domain_list(main, "relay_domains")?,
            mynetworks: network_list(main, "mynetworks")?,
            inet_interfaces: main.get_list("inet_interfaces")?,
            inet_protocols,
            inet_interface_addrs,
            queue_directory: main.get_path("queue_directory", cwd)?,
            data_directory: main.get_path("data_directory", cwd)?,
            mail_owner_uid: crate::passwd::by_name(&main.get_str("mail_owner")?).map(|p| p.uid),
            mail_owner: main.get_str("mail_owner")?,
            setgid_group: main.get_str("setgid_group")?,
            authorized_mailq_users: user_acl(main, "authorized_mailq_users")?,
            authorized_flush_users: user_acl(main, "authorized_flush_users")?,
            authorized_submit_users: user_acl(main, "authorized_submit_users")?,
            smtpd: SmtpdParams::from_main(main)?,
            hopcount_limit: main.get_number("hopcount_limit", 1)?,
            header_size_limit: main.get_number("header_size_limit", 1)?,
            sluice_shards: shards_resolved,
            sluice_segment_size: {
                let size = main.get_size("sluice_segment_size")?;
                // A segment must hold a useful batch of records.
                if size < 1 << 20 {
                    return Err(main.bad_value("sluice_segment_size", "too small (minimum 1m)"));
                }
                size
            },
            sluice_inflight_memory_limit: inflight_memory_limit(main, shards_resolved, warnings)?,
            enable_long_queue_ids: main.get_bool("enable_long_queue_ids")?,
            always_add_missing_headers: main.get_bool("always_add_missing_headers")?,
            anvil_rate_time_unit: main
                .get_time_min("anvil_rate_time_unit", Duration::from_secs(1))?,
            myhostname,
        })
    }

    /// The restriction context for one client; `resolve` is the delivery
    /// side's resolver (`qmgr::resolve_params`), so that the relay check
    /// judges an address by where it would be delivered.
    pub fn relay_context<'a>(
        &'a self,
        client_addr: IpAddr,
        resolve: &'a ResolveParams,
    ) -> RelayContext<'a> {
        RelayContext {
            client_addr,
            mynetworks: &self.mynetworks,
            resolve,
            sasl_username: None,
            sender_login_maps: None,
        }
    }
}

/// `sluice_inflight_memory_limit`, with a warning when a shard's share is
/// raised to twice `message_size_limit` (see `shard::content_share`), or
/// when messages have no size limit and so may not fit at all.
fn inflight_memory_limit(
    main: &MainCf,
    shards: usize,
    warnings: &mut Vec<String>,
) -> Result<u64, ConfigError> {
    let limit = main.get_size("sluice_inflight_memory_limit")?;
    let size = main.get_int("message_size_limit")?;
    let share = limit / shards.max(1) as u64;
    if limit > 0 && size == 0 {
        warnings.push(format!(
            "message_size_limit = 0 (unlimited) with sluice_inflight_memory_limit = {limit}: \
             messages over about {} bytes will always get 451 4.3.0",
            share / 2
        ));
    } else if limit > 0 && share < size.saturating_mul(2) {
        warnings.push(format!(
            "sluice_inflight_memory_limit = {limit} gives each of {shards} shards less than \
             twice message_size_limit = {size}: each shard may hold {} bytes, {} in all",
            size.saturating_mul(2),
            size.saturating_mul(2).saturating_mul(shards as u64)
        ));
    }
    Ok(limit)
}

impl SmtpdParams {
    /// Reads the smtpd parameters from `main` (with any overrides already
    /// layered on it). Minimums are Postfix's.
    pub fn from_main(main: &MainCf) -> Result<SmtpdParams, ConfigError> {
        Ok(SmtpdParams {
            message_size_limit: main.get_int("message_size_limit")?,
            smtpd_recipient_limit: main.get_number("smtpd_recipient_limit", 1)?,
            line_length_limit: main.get_number("line_length_limit", 512)?,
            smtpd_timeout: main.get_time_min("smtpd_timeout", Duration::from_secs(1))?,
            smtpd_hard_error_limit: main.get_number("smtpd_hard_error_limit", 1)?,
            smtpd_soft_error_limit: main.get_number("smtpd_soft_error_limit", 1)?,
            smtpd_junk_command_limit: main.get_number("smtpd_junk_command_limit", 1)?,
            smtpd_error_sleep_time: main.get_time("smtpd_error_sleep_time")?,
            smtpd_banner: main.get_str("smtpd_banner")?,
            smtpd_forbid_bare_newline: main.typed("smtpd_forbid_bare_newline", |v| {
                match v.trim().to_ascii_lowercase().as_str() {
                    "normalize" | "yes" => Ok(BareNewline::Normalize),
                    "reject" => Ok(BareNewline::Reject),
                    "no" => Ok(BareNewline::No),
                    _ => Err("bad value (use normalize, reject or no)"),
                }
            })?,
            smtpd_forbid_unauth_pipelining: main.get_bool("smtpd_forbid_unauth_pipelining")?,
            disable_vrfy_command: main.get_bool("disable_vrfy_command")?,
            relay_restrictions: restriction_list(main, "smtpd_relay_restrictions")?,
            recipient_restrictions: restriction_list(main, "smtpd_recipient_restrictions")?,
            client_limits: ClientLimits::from_main(main)?,
            sasl: super::SaslParams::from_main(main)?,
            tls: crate::tls::SmtpdTls::from_main(main)?,
            header_rewrite_clients: super::HeaderRewriteClients::from_main(main)?,
        })
    }
}

/// Typed getters: expand, convert, and report a bad value with `file:line`.
impl MainCf {
    /// The expanded value (empty when undefined).
    pub fn get_str(&self, name: &str) -> Result<String, ConfigError> {
        Ok(self.try_get(name)?.unwrap_or_default())
    }

    /// A non-empty path; a relative one is taken relative to `cwd`.
    pub fn get_path(&self, name: &str, cwd: &Path) -> Result<PathBuf, ConfigError> {
        let v = self.get_str(name)?;
        if v.is_empty() {
            return Err(self.bad_value(name, "empty path"));
        }
        Ok(cwd.join(v))
    }

    /// A list split on commas and whitespace.
    pub fn get_list(&self, name: &str) -> Result<Vec<String>, ConfigError> {
        Ok(params::split_list(&self.get_str(name)?))
    }

    pub fn get_bool(&self, name: &str) -> Result<bool, ConfigError> {
        self.typed(name, params::parse_bool)
    }

    pub fn get_int(&self, name: &str) -> Result<u64, ConfigError> {
        self.typed(name, params::parse_int)
    }

    /// A byte count with optional k/m/g suffix.
    pub fn get_size(&self, name: &str) -> Result<u64, ConfigError> {
        self.typed(name, params::parse_size)
    }

    /// A time; a bare number is in the unit of the parameter's default.
    pub fn get_time(&self, name: &str) -> Result<Duration, ConfigError> {
        let unit = match params::param(name).map(|p| p.kind) {
            Some(Kind::Time(unit)) => unit,
            _ => 's',
        };
        self.typed(name, |v| params::parse_time(v, unit))
    }

    /// An integer of type `T` that must be at least `min`.
    pub fn get_number<T: TryFrom<u64>>(&self, name: &str, min: u64) -> Result<T, ConfigError> {
        let n = self.get_int(name)?;
        if n < min {
            return Err(
                self.bad_value(name, &format!("invalid {name} parameter value {n} < {min}"))
            );
        }
        T::try_from(n).map_err(|_| self.bad_value(name, "bad numerical configuration"))
    }

    pub(crate) fn get_time_min(&self, name: &str, min: Duration) -> Result<Duration, ConfigError> {
        let t = self.get_time(name)?;
        if t < min {
            return Err(self.bad_value(
                name,
                &format!("invalid {name}: {}s (min {}s)", t.as_secs(), min.as_secs()),
            ));
        }
        Ok(t)
    }

    /// `file:line: <problem>: name = value`.
    pub(crate) fn bad_value(&self, name: &str, problem: &str) -> ConfigError {
        let value = self.get(name).unwrap_or_default();
        ConfigError::Syntax {
            origin: self.origin(name),
            what: format!("{problem}: {name} = {value}"),
        }
    }
}

fn restriction_list(main: &MainCf, name: &str) -> Result<Vec<Restriction>, ConfigError> {
    Restriction::parse_list(&main.get_str(name)?).map_err(|e| ConfigError::Syntax {
        origin: main.origin(name),
        what: format!("{name}: {e}"),
    })
}

/// An `authorized_*_users` list, with its tables and files read now.
fn user_acl(main: &MainCf, name: &str) -> Result<UserAcl, ConfigError> {
    UserAcl::parse(name, &main.get_list(name)?).map_err(|e| main.bad_value(name, &e.message))
}

/// mydestination / relay_domains: lower-cased, trailing dot removed.
/// Lookup tables and `/file` lists are not implemented yet; saying so beats
/// silently matching nothing.
fn domain_list(main: &MainCf, name: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for item in main.get_list(name)? {
        if item.contains(':') || item.starts_with('/') || item.starts_with('!') {
            return Err(ConfigError::Syntax {
                origin: main.origin(name),
                what: format!(
                    "{name}: \"{item}\": lookup tables, files and negation are not supported yet; list the domains themselves"
                ),
            });
        }
        let d = item.strip_suffix('.').unwrap_or(&item).to_ascii_lowercase();
        if !d.is_empty() {
            out.push(d);
        }
    }
    Ok(out)
}

fn network_list(main: &MainCf, name: &str) -> Result<Vec<Cidr>, ConfigError> {
    main.get_list(name)?
        .iter()
        .map(|item| {
            Cidr::parse(item).map_err(|e| ConfigError::Syntax {
                origin: main.origin(name),
                what: format!("{name}: {e}"),
            })
        })
        .collect()
}

/// inet_protocols and this host's own addresses per inet_interfaces.
pub(crate) fn own_addresses(
    main: &MainCf,
    facts: &HostFacts,
    warnings: &mut Vec<String>,
) -> Result<(Protocols, Vec<IpAddr>), ConfigError> {
    let protocols_list = main.get_list("inet_protocols")?;
    let (protocols, warning) =
        Protocols::parse(&protocols_list, facts.ipv6).map_err(|what| ConfigError::Syntax {
            origin: main.origin("inet_protocols"),
            what,
        })?;
    warnings.extend(warning);
    let interfaces = main.get_list("inet_interfaces")?;
    let allowed = |ip: &IpAddr| {
        if ip.is_ipv4() {
            protocols.ipv4
        } else {
            protocols.ipv6
        }
    };
    let mut own: Vec<IpAddr> = Vec::new();
    if interfaces.iter().any(|i| i.eq_ignore_ascii_case("all")) {
        own.extend(facts.interfaces.iter().map(|i| i.addr).filter(allowed));
    }
    let explicit: Vec<String> = interfaces
        .into_iter()
        .filter(|i| !i.eq_ignore_ascii_case("all"))
        .collect();
    let listed =
        mastercf::interface_addrs(&explicit, protocols).map_err(|what| ConfigError::Syntax {
            origin: main.origin("inet_interfaces"),
            what: format!("inet_interfaces: {what}"),
        })?;
    for ip in listed {
        if !own.contains(&ip) {
            own.push(ip);
        }
    }
    Ok((protocols, own))
}

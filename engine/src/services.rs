//! The delivery side's parameters, read from the configuration once at
//! start-up (a bad value stops start-up with `file:line: …`), then handed
//! to every shard, which builds its own qmgr halves, scache and resolver
//! from them.

use std::path::Path;

use sluice_agents::bounce::NoticeParams;
use sluice_agents::cleanup::CleanupParams;
use sluice_agents::dns::{Hosts, InetProtocols, LookupMode, ResolvConf, Resolver};
use sluice_agents::resolve::ResolveParams;
use sluice_agents::smtp::tls::{TlsClient, TlsClientParams};
use sluice_agents::smtp::{Connection, SmtpParams};

use crate::active::ActiveParams;
use crate::config::{Config, ConfigError};
use crate::mesh::QmgrEntry;
use crate::qmgr::{resolve_params, BackoffParams, Scheduler, SchedulerParams, TransportTable};
use crate::runtime::GlommioDns;
use crate::scache::{Scache, ScacheParams};

/// Everything a shard needs to run qmgr and the smtp agent. Cloned into
/// each shard at start (plain data; no shared state).
#[derive(Clone)]
pub struct ServiceParams {
    pub shards: usize,
    pub active_limit: usize,
    pub backoff: BackoffParams,
    pub resolve: ResolveParams,
    pub defer_transports: Vec<String>,
    pub notice: NoticeParams,
    pub cleanup: CleanupParams,
    pub smtp: SmtpParams,
    /// The smtp_tls_* parameters; each shard builds its own [`TlsClient`].
    pub tls: TlsClientParams,
    pub scache: ScacheParams,
    pub transports: TransportTable,
    pub recipient_limit: usize,
    pub resolv_conf: ResolvConf,
    pub hosts: Hosts,
    pub lookup: Vec<LookupMode>,
    pub inet_protocols: InetProtocols,
}

fn origin_error(config: &Config, name: &str, what: String) -> ConfigError {
    ConfigError::Syntax {
        origin: config.main.origin(name),
        what,
    }
}

impl ServiceParams {
    /// Read the delivery parameters; `warnings` gets Postfix-style notes.
    pub fn from_config(
        config: &Config,
        shards: usize,
        warnings: &mut Vec<String>,
    ) -> Result<ServiceParams, ConfigError> {
        let main = &config.main;
        let p = &config.params;
        let (backoff, w) = BackoffParams::from_config(main)?;
        warnings.extend(w);
        let (resolve, w) = resolve_params(main, p)?;
        warnings.extend(w);
        // cleanup queues what the resolver (and so smtpd's relay check) sees.
        let rewrite = resolve.rewrite.clone();
        let (transports, w) = TransportTable::from_config(main, &config.master)?;
        warnings.extend(w);
        let mut notice = NoticeParams::new(p.myhostname.clone(), p.myorigin.clone());
        notice.mail_name = p.mail_name.clone();
        notice.bounce_size_limit = main.get_number("bounce_size_limit", 0)?;
        notice.maximal_queue_lifetime_s = backoff.maximal_queue_lifetime.as_secs() as i64;
        notice.delay_warning_time_s = backoff.delay_warning_time.as_secs() as i64;
        let mut smtp = SmtpParams::postfix_defaults(&main.get_str("smtp_helo_name")?);
        smtp.connect_timeout = main.get_time("smtp_connect_timeout")?;
        smtp.helo_timeout = main.get_time("smtp_helo_timeout")?;
        smtp.mail_timeout = main.get_time("smtp_mail_timeout")?;
        smtp.rcpt_timeout = main.get_time("smtp_rcpt_timeout")?;
        smtp.data_init_timeout = main.get_time("smtp_data_init_timeout")?;
        smtp.data_xfer_timeout = main.get_time("smtp_data_xfer_timeout")?;
        smtp.data_done_timeout = main.get_time("smtp_data_done_timeout")?;
        smtp.quit_timeout = main.get_time("smtp_quit_timeout")?;
        smtp.starttls_timeout = main.get_time("smtp_starttls_timeout")?;
        let tls = crate::smtp_tls::tls_client_params(config)?;
        smtp.sasl = crate::smtp_sasl::sasl_client_params(config)?;
        smtp.rset_timeout = main.get_time("smtp_rset_timeout")?;
        smtp.line_length_limit = p.smtpd.line_length_limit;
        smtp.smtp_line_length_limit = main.get_number("smtp_line_length_limit", 0)?;
        let lookup_text = main.get_list("smtp_host_lookup")?.join(", ");
        let lookup = LookupMode::parse_list(&lookup_text)
            .map_err(|e| origin_error(config, "smtp_host_lookup", e.to_string()))?;
        let protocols_text = main.get_list("inet_protocols")?.join(", ");
        let inet_protocols = InetProtocols::parse(&protocols_text).unwrap_or(InetProtocols::All);
        let scache = ScacheParams {
            idle_limit: main.get_time("smtp_connection_cache_time_limit")?,
            reuse_time_limit: main.get_time("smtp_connection_reuse_time_limit")?,
            reuse_count_limit: main.get_number("smtp_connection_reuse_count_limit", 0)?,
            per_destination: main
                .get_number::<usize>("default_destination_concurrency_limit", 1)?,
        };
        let mut resolv_conf = ResolvConf::load(Path::new("/etc/resolv.conf")).unwrap_or_default();
        let servers = main.get_list("sluice_nameservers")?;
        if !servers.is_empty() {
            resolv_conf.nameservers = servers
                .iter()
                .map(|s| {
                    s.parse::<std::net::SocketAddr>()
                        .or_else(|_| {
                            s.parse::<std::net::IpAddr>()
                                .map(|ip| std::net::SocketAddr::new(ip, 53))
                        })
                        .map_err(|_| {
                            origin_error(
                                config,
                                "sluice_nameservers",
                                format!("bad nameserver address: {s}"),
                            )
                        })
                })
                .collect::<Result<_, _>>()?;
        }
        let active_total: usize = main.get_number("qmgr_message_active_limit", 1)?;
        let recipient_limit: usize = main.get_number("qmgr_message_recipient_limit", 1)?;
        Ok(ServiceParams {
            shards,
            active_limit: active_total.div_ceil(shards.max(1)),
            backoff,
            resolve,
            defer_transports: main.get_list("defer_transports")?,
            notice,
            cleanup: CleanupParams {
                myhostname: p.myhostname.clone(),
                rewrite,
                mail_name: p.mail_name.clone(),
                header_size_limit: p.header_size_limit,
                hopcount_limit: p.hopcount_limit,
                always_add_missing_headers: p.always_add_missing_headers,
            },
            smtp,
            tls,
            scache,
            transports,
            recipient_limit,
            resolv_conf,
            hosts: Hosts::load(Path::new("/etc/hosts")).unwrap_or_else(|_| Hosts::parse("")),
            lookup,
            inet_protocols,
        })
    }

    pub fn active(&self) -> ActiveParams {
        ActiveParams {
            active_limit: self.active_limit,
            backoff: self.backoff,
            resolve: self.resolve.clone(),
            defer_transports: self.defer_transports.clone(),
            notice: self.notice.clone(),
            cleanup: self.cleanup.clone(),
        }
    }

    pub fn scheduler_params(&self) -> SchedulerParams {
        SchedulerParams {
            transports: self.transports.clone(),
            recipient_limit: self.recipient_limit,
            suspend: self.backoff.minimal_backoff,
        }
    }

    pub fn scheduler(&self) -> Scheduler<QmgrEntry> {
        Scheduler::new(self.scheduler_params())
    }

    pub fn scache(&self) -> Scache<Connection<glommio::net::TcpStream>> {
        Scache::new(self.scache)
    }

    /// This shard's TLS client. The parameters were checked at load; should
    /// building fail now (a CA file removed since), the error is kept and
    /// TLS deliveries defer with it.
    pub fn tls_client(&self) -> Result<TlsClient, String> {
        TlsClient::new(&self.tls)
    }

    pub fn resolver(&self) -> Resolver<GlommioDns> {
        Resolver::new(
            self.resolv_conf.clone(),
            self.hosts.clone(),
            self.lookup.clone(),
            GlommioDns,
        )
        .with_inet_protocols(self.inet_protocols)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::ServiceParams;
    use crate::config::{from_text, HostFacts};

    fn smtp_line_length_limit(main_cf: &str) -> usize {
        let config = from_text(
            Path::new("/etc/sluice"),
            (main_cf, Path::new("/etc/sluice/main.cf")),
            ("", Path::new("/etc/sluice/master.cf")),
            &HostFacts::for_tests(),
            Path::new("/"),
        )
        .unwrap();
        let mut warnings = Vec::new();
        let p = ServiceParams::from_config(&config, 1, &mut warnings).unwrap();
        p.smtp.smtp_line_length_limit
    }

    #[test]
    fn smtp_line_length_limit_is_read() {
        assert_eq!(smtp_line_length_limit(""), 998);
        assert_eq!(smtp_line_length_limit("smtp_line_length_limit = 0\n"), 0);
        assert_eq!(smtp_line_length_limit("smtp_line_length_limit = 76\n"), 76);
    }
}

//! The defaults that depend on the machine: myhostname, mydomain,
//! mynetworks (and config_directory, which is the directory loaded).

use std::net::IpAddr;
use std::path::Path;

use super::cidr::{mask_prefix_len, Cidr};
use super::host::HostFacts;
use super::maincf::MainCf;
use super::typed::own_addresses;
use super::ConfigError;

/// Postfix's DEF_MYDOMAIN, used when the host name has no domain.
const DEFAULT_DOMAIN: &str = "localdomain";

/// Fills in the computed defaults. Order matters, as in Postfix's
/// mail_params_init: myhostname, then mydomain (from the effective
/// myhostname), then mynetworks.
pub(crate) fn compute(
    main: &mut MainCf,
    facts: &HostFacts,
    config_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    main.set_computed_default("config_directory", config_dir.display().to_string());

    // check_myhostname: a name without a dot gets $mydomain (when main.cf
    // sets it) or "localdomain" appended.
    let host = &facts.hostname;
    let myhostname = if host.contains('.') {
        host.clone()
    } else {
        let domain = if main.is_set("mydomain") {
            main.get_str("mydomain")?
        } else {
            DEFAULT_DOMAIN.to_string()
        };
        format!("{host}.{domain}")
    };
    main.set_computed_default("myhostname", myhostname);

    // check_mydomainname: what follows the first dot of $myhostname.
    let effective = main.get_str("myhostname")?;
    let mydomain = effective
        .split_once('.')
        .map_or(DEFAULT_DOMAIN, |(_, d)| d)
        .to_string();
    main.set_computed_default("mydomain", mydomain);

    // mynetworks from mynetworks_style. When main.cf sets mynetworks, a bad
    // style is only worth a warning (the default is then unused).
    match default_mynetworks(main, facts) {
        Ok(v) => main.set_computed_default("mynetworks", v),
        Err(e) if main.is_set("mynetworks") => {
            warnings.push(e.to_string());
            main.set_computed_default("mynetworks", String::new());
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Postfix's mynetworks(): one block per own address, by style.
fn default_mynetworks(main: &MainCf, facts: &HostFacts) -> Result<String, ConfigError> {
    let style = main.get_str("mynetworks_style")?.to_ascii_lowercase();
    if !matches!(style.as_str(), "host" | "subnet" | "class") {
        return Err(main.bad_value(
            "mynetworks_style",
            "bad mynetworks_style value; specify exactly one of host, subnet, class",
        ));
    }
    // own_addresses' warnings (IPv6 disabled) are reported once, by the
    // typed view; do not repeat them here.
    let (_, own) = own_addresses(main, facts, &mut Vec::new())?;
    let mut blocks: Vec<String> = Vec::new();
    for ip in own {
        let prefix = facts
            .interfaces
            .iter()
            .find(|i| i.addr == ip)
            .map(|i| mask_prefix_len(i.netmask))
            .unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
        let cidr = match style.as_str() {
            "host" => Cidr::host(ip),
            "subnet" => Cidr::containing(ip, prefix),
            _ => match ip {
                IpAddr::V4(v4) => Cidr::containing(ip, class_prefix(v4.octets()[0])),
                IpAddr::V6(_) => Cidr::containing(ip, prefix),
            },
        };
        let text = cidr.to_string();
        if !blocks.contains(&text) {
            blocks.push(text);
        }
    }
    Ok(blocks.join(" "))
}

/// The classful network length of an IPv4 address (A /8, B /16, C /24,
/// D and above /4, as Postfix masks class D).
fn class_prefix(first_octet: u8) -> u8 {
    match first_octet {
        0..=127 => 8,
        128..=191 => 16,
        192..=223 => 24,
        _ => 4,
    }
}

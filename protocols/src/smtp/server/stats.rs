//! Postfix's per-command counters, printed at disconnect as
//! `ehlo=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=3/5`.

use std::fmt::Write as _;

use super::command::Verb;

/// Successes and totals per verb, plus unknown commands.
#[derive(Clone, Debug, Default)]
pub(super) struct CommandStats {
    ok: [u32; Verb::ALL.len()],
    total: [u32; Verb::ALL.len()],
    unknown: u32,
}

impl CommandStats {
    pub fn record(&mut self, verb: Verb, ok: bool) {
        let i = verb.index();
        self.total[i] = self.total[i].saturating_add(1);
        if ok {
            self.ok[i] = self.ok[i].saturating_add(1);
        }
    }

    pub fn record_unknown(&mut self) {
        self.unknown = self.unknown.saturating_add(1);
    }

    /// `name=ok[/total]` for each verb used (in Postfix's table order),
    /// `unknown=0/N`, then `commands=ok[/total]`.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(64);
        let (mut ok_sum, mut total_sum) = (0u64, 0u64);
        let counts = Verb::ALL
            .iter()
            .map(|v| (v.name(), self.ok[v.index()], self.total[v.index()]))
            .chain(std::iter::once(("UNKNOWN", 0, self.unknown)));
        for (name, ok, total) in counts {
            if total == 0 {
                continue;
            }
            ok_sum += u64::from(ok);
            total_sum += u64::from(total);
            let _ = write!(s, "{}={}", name.to_ascii_lowercase(), ok);
            if ok != total {
                let _ = write!(s, "/{total}");
            }
            s.push(' ');
        }
        let _ = write!(s, "commands={ok_sum}");
        if ok_sum != total_sum {
            let _ = write!(s, "/{total_sum}");
        }
        s
    }
}

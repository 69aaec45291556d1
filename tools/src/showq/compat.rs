//! `postqueue -p`: the Sendmail-compatible `mailq` listing, laid out as
//! Postfix's `showq_compat.c` prints it.
//!
//! ```text
//! -Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
//! 451ED9948E3     229 Sat Nov 28 18:21:25  alice@example.com
//!                                                           (deferred transport)
//!                                          bob@example.org
//!
//! -- 0 Kbytes in 1 Request.
//! ```

use std::io::{self, BufWriter, Write};

use sluice_agents::datetime::BrokenDownTime;

use super::address::{external_address, printable};
use super::{listing_order, LocalTimeFn, ShowqEntry, QUEUE_ACTIVE, QUEUE_HOLD};

/// Output buffer of [`format_mailq`]: large enough that a listing costs
/// few system calls, small enough not to matter.
const OUTPUT_BUFFER_BYTES: usize = 64 * 1024;
/// `(reason)` lines end at this column: Postfix pads to 76 bytes of
/// reason, plus the two parentheses.
const REASON_COLUMN: usize = 76;

/// The two layouts: `enable_long_queue_ids = no` (`"%-11s %7ld %20.20s %s"`)
/// and `yes` (`"%-17s %8ld %19.19s %s"`).
struct Layout {
    heading: &'static str,
    id_width: usize,
    size_width: usize,
    /// Between the 19-character time and the sender: the 20th character of
    /// `asctime()` (a space) is printed with short IDs, not with long ones.
    after_time: &'static str,
    /// Recipient lines are the empty ID, size and time columns.
    recipient_indent: &'static str,
}

const SHORT_IDS: Layout = Layout {
    heading: "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n",
    id_width: 11,
    size_width: 7,
    after_time: "  ",
    // 11 + 1 + 7 + 1 + 20 + 1
    recipient_indent: "                                         ",
};

const LONG_IDS: Layout = Layout {
    heading: "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n",
    id_width: 17,
    size_width: 8,
    after_time: " ",
    // 17 + 1 + 8 + 1 + 19 + 1
    recipient_indent: "                                               ",
};

/// Writes the `postqueue -p` listing of `entries`, arrival times in the
/// local zone. `long_ids` selects the `enable_long_queue_ids = yes`
/// layout (Sluice's IDs always need it).
pub fn format_mailq(
    entries: &[ShowqEntry],
    long_ids: bool,
    out: &mut impl Write,
) -> io::Result<()> {
    format_mailq_at(entries, long_ids, BrokenDownTime::local, out)
}

/// [`format_mailq`] with the time zone chosen by the caller.
pub fn format_mailq_at(
    entries: &[ShowqEntry],
    long_ids: bool,
    local_time: LocalTimeFn,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut writer = MailqWriter::new(
        BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, out),
        long_ids,
        local_time,
    );
    for entry in entries {
        writer.entry(entry)?;
    }
    writer.finish()?.flush()
}

/// The `postqueue -p` listing, one message at a time: [`Self::entry`] for
/// each message, then [`Self::finish`] for the trailer. Give it a buffered
/// writer; it issues one small write per field.
pub struct MailqWriter<W: Write> {
    out: W,
    layout: &'static Layout,
    local_time: LocalTimeFn,
    messages: u64,
    total_bytes: u64,
    /// Recipient listing order, reused across messages.
    order: Vec<usize>,
}

impl<W: Write> MailqWriter<W> {
    pub fn new(out: W, long_ids: bool, local_time: LocalTimeFn) -> Self {
        MailqWriter {
            out,
            layout: if long_ids { &LONG_IDS } else { &SHORT_IDS },
            local_time,
            messages: 0,
            total_bytes: 0,
            order: Vec::new(),
        }
    }

    /// Lists one message: the heading before the first, a blank line
    /// before the others.
    pub fn entry(&mut self, entry: &ShowqEntry) -> io::Result<()> {
        let layout = self.layout;
        let out = &mut self.out;
        if self.messages == 0 {
            out.write_all(layout.heading.as_bytes())?;
        } else {
            out.write_all(b"\n")?;
        }
        self.messages += 1;
        self.total_bytes = self.total_bytes.saturating_add(entry.message_size);

        // Queue ID and status markers, left-aligned, never truncated.
        let id = printable(&entry.queue_id);
        let marker = match entry.queue_name.as_str() {
            QUEUE_ACTIVE => "*",
            QUEUE_HOLD => "!",
            _ => "",
        };
        let expire = if entry.forced_expire { "#" } else { "" };
        let id_len = id.len() + marker.len() + expire.len();
        writeln!(
            out,
            "{id}{marker}{expire}{:pad$} {:>size_width$} {}{}{}",
            "",
            entry.message_size,
            (self.local_time)(entry.arrival_time).asctime_no_year(),
            layout.after_time,
            external_address(&entry.sender),
            pad = layout.id_width.saturating_sub(id_len),
            size_width = layout.size_width,
        )?;

        // Recipients: a "(reason)" line whenever the reason changes, and
        // "(reason unavailable)" when it changes to none.
        listing_order(&entry.recipients, &mut self.order);
        let mut shown_reason = "";
        for &i in &self.order {
            let recipient = &entry.recipients[i];
            let reason = recipient.reason();
            if reason != shown_reason {
                shown_reason = reason;
                let text = if reason.is_empty() {
                    "reason unavailable"
                } else {
                    reason
                };
                let text = printable(text);
                writeln!(
                    out,
                    "{:pad$}({text})",
                    "",
                    pad = REASON_COLUMN.saturating_sub(text.len())
                )?;
            }
            out.write_all(layout.recipient_indent.as_bytes())?;
            out.write_all(external_address(&recipient.address).as_bytes())?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Writes the trailer (`-- N Kbytes in M Requests.`, or `Mail queue is
    /// empty`) and hands back the writer, unflushed.
    pub fn finish(mut self) -> io::Result<W> {
        match self.messages {
            0 => self.out.write_all(b"Mail queue is empty\n")?,
            n => write!(
                self.out,
                "\n-- {} Kbytes in {} Request{}.\n",
                self.total_bytes / 1024,
                n,
                if n == 1 { "" } else { "s" }
            )?,
        }
        Ok(self.out)
    }
}

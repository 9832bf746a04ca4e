//! The question-and-answer primitives of the `-c` dialogue, over any
//! `BufRead` input and `Write` output so tests can script both ends.
//!
//! * [`Prompter::text`]: `Prompt [default]: `; an empty answer (or the end
//!   of the input) takes the default. Answers are trimmed.
//! * [`Prompter::yes_no`]: `Prompt [Y/n]? ` or `[y/N]? `; `y`, `yes`, `n`,
//!   `no` in any case, empty or end of input = the default; anything else is
//!   asked again.
//! * [`Prompter::valid`]: a text prompt whose answer must pass a check; a
//!   refused answer is explained (naming what was typed) and asked again.
//!
//! The end of the input never makes a loop: from then on every prompt takes
//! its default, and an answer that would have to be asked again ends the
//! dialogue with [`DialogueError::InputEnded`] instead.
//!
//! When the input is not a terminal (a script), answers are echoed after the
//! prompt so the transcript reads like a terminal session.

use std::io::{self, BufRead, Read, Write};

/// Why the dialogue stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DialogueError {
    /// Reading an answer failed.
    #[error("reading the answers failed: {0}")]
    Input(#[source] io::Error),
    /// Writing the dialogue failed.
    #[error("writing the dialogue failed: {0}")]
    Output(#[source] io::Error),
    /// The input ended while a refused answer had to be asked again.
    #[error("the input ended before a valid answer to \"{prompt}\" was given")]
    InputEnded {
        /// The question.
        prompt: String,
    },
}

/// The longest answer line read; the rest of a longer line is discarded.
const MAX_ANSWER: usize = 4096;

/// Asks questions on `out` and reads the answers from `input`.
#[derive(Debug)]
pub struct Prompter<R, W> {
    input: R,
    out: W,
    echo: bool,
    eof: bool,
}

impl<R: BufRead, W: Write> Prompter<R, W> {
    /// `echo`: repeat each answer after its prompt (for input that is not a
    /// terminal, where nobody sees it typed).
    pub fn new(input: R, out: W, echo: bool) -> Prompter<R, W> {
        Prompter {
            input,
            out,
            echo,
            eof: false,
        }
    }

    /// Whether the input has ended.
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Write `text` and a newline.
    pub fn say(&mut self, text: &str) -> Result<(), DialogueError> {
        writeln!(self.out, "{text}").map_err(DialogueError::Output)
    }

    /// Write an empty line.
    pub fn blank(&mut self) -> Result<(), DialogueError> {
        self.say("")
    }

    /// `prompt [default]: `; the answer, or `default` for an empty answer.
    pub fn text(&mut self, prompt: &str, default: &str) -> Result<String, DialogueError> {
        self.show(&format!("{prompt} [{default}]: "))?;
        let answer = self.answer()?;
        Ok(if answer.is_empty() {
            default.to_owned()
        } else {
            answer
        })
    }

    /// `prompt [Y/n]? ` (default yes) or `prompt [y/N]? ` (default no).
    pub fn yes_no(&mut self, prompt: &str, default: bool) -> Result<bool, DialogueError> {
        let choices = if default { "[Y/n]" } else { "[y/N]" };
        loop {
            self.show(&format!("{prompt} {choices}? "))?;
            let answer = self.answer()?.to_ascii_lowercase();
            match answer.as_str() {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => self.say(&format!("Please answer y or n (not `{answer}`)."))?,
            }
        }
    }

    /// A text prompt whose answer must pass `check`, which returns the
    /// parsed value or the reason for refusing the answer.
    pub fn valid<T>(
        &mut self,
        prompt: &str,
        default: &str,
        mut check: impl FnMut(&str) -> Result<T, String>,
    ) -> Result<T, DialogueError> {
        loop {
            let answer = self.text(prompt, default)?;
            let checked = writable(&answer).and_then(|()| check(&answer));
            match checked {
                Ok(value) => return Ok(value),
                Err(reason) => {
                    self.say(&reason)?;
                    if self.eof {
                        return Err(DialogueError::InputEnded {
                            prompt: prompt.to_owned(),
                        });
                    }
                }
            }
        }
    }

    /// One entry of a list: `prompt [done]: `; an empty answer (or the end
    /// of the input) ends the list with `None`. A refused answer is
    /// explained and asked again.
    pub fn list_item<T>(
        &mut self,
        prompt: &str,
        mut check: impl FnMut(&str) -> Result<T, String>,
    ) -> Result<Option<T>, DialogueError> {
        loop {
            self.show(&format!("{prompt} [done]: "))?;
            let answer = self.answer()?;
            if answer.is_empty() || answer == "done" {
                return Ok(None);
            }
            match writable(&answer).and_then(|()| check(&answer)) {
                Ok(value) => return Ok(Some(value)),
                Err(reason) => self.say(&reason)?,
            }
        }
    }

    fn show(&mut self, prompt: &str) -> Result<(), DialogueError> {
        self.out
            .write_all(prompt.as_bytes())
            .map_err(DialogueError::Output)?;
        self.out.flush().map_err(DialogueError::Output)
    }

    /// Read one answer line (trimmed); empty at the end of the input.
    fn answer(&mut self) -> Result<String, DialogueError> {
        if self.eof {
            self.say("")?;
            return Ok(String::new());
        }
        let mut line = Vec::new();
        let n = self
            .input
            .by_ref()
            .take(MAX_ANSWER as u64)
            .read_until(b'\n', &mut line)
            .map_err(DialogueError::Input)?;
        if n == MAX_ANSWER && line.last() != Some(&b'\n') {
            // Discard the rest of an over-long line.
            let mut rest = Vec::new();
            self.input
                .read_until(b'\n', &mut rest)
                .map_err(DialogueError::Input)?;
        }
        if n == 0 {
            self.eof = true;
            self.say("")?;
            self.say("(end of input: the remaining questions take their defaults)")?;
            return Ok(String::new());
        }
        let answer = String::from_utf8_lossy(&line).trim().to_owned();
        if self.echo {
            self.say(&answer)?;
        }
        Ok(answer)
    }
}

/// Answers that `fence_virt.conf` cannot hold as a quoted value.
pub fn writable(answer: &str) -> Result<(), String> {
    if answer.contains('"') {
        Err(format!(
            "`{answer}` contains `\"`, which fence_virt.conf cannot hold in a value."
        ))
    } else if answer.chars().any(char::is_control) {
        Err(format!(
            "{answer:?} contains a control character, which fence_virt.conf cannot hold."
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn prompter(input: &str) -> Prompter<&[u8], Vec<u8>> {
        Prompter::new(input.as_bytes(), Vec::new(), true)
    }

    fn transcript(p: Prompter<&[u8], Vec<u8>>) -> String {
        String::from_utf8(p.out).unwrap()
    }

    #[test]
    fn text_takes_the_default_on_an_empty_line_and_trims() {
        let mut p = prompter("\n  tcp \n");
        assert_eq!(p.text("Listener", "multicast").unwrap(), "multicast");
        assert_eq!(p.text("Listener", "multicast").unwrap(), "tcp");
        assert!(!p.at_eof());
        assert_eq!(
            transcript(p),
            "Listener [multicast]: \nListener [multicast]: tcp\n"
        );
    }

    #[test]
    fn without_echo_only_the_prompt_is_written() {
        let mut p = Prompter::new("tcp\n".as_bytes(), Vec::new(), false);
        assert_eq!(p.text("Listener", "multicast").unwrap(), "tcp");
        assert_eq!(String::from_utf8(p.out).unwrap(), "Listener [multicast]: ");
    }

    #[test]
    fn end_of_input_gives_defaults_forever_and_says_so_once() {
        let mut p = prompter("");
        for _ in 0..3 {
            assert_eq!(p.text("Port", "1229").unwrap(), "1229");
        }
        assert!(p.yes_no("Replace", false).is_ok_and(|yes| !yes));
        assert!(p.yes_no("Keep", true).unwrap());
        assert!(p.at_eof());
        let t = transcript(p);
        assert_eq!(t.matches("end of input").count(), 1, "{t}");
        assert!(t.ends_with("Replace [y/N]? \nKeep [Y/n]? \n"), "{t}");
    }

    #[test]
    fn a_last_line_without_newline_is_an_answer() {
        let mut p = prompter("y");
        assert!(p.yes_no("Replace", false).unwrap());
        assert!(!p.yes_no("Replace", false).unwrap());
    }

    #[test]
    fn yes_no_words_and_re_asking() {
        let mut p = prompter("YES\nNo\nmaybe\ny\n\n");
        assert!(p.yes_no("A", false).unwrap());
        assert!(!p.yes_no("B", true).unwrap());
        assert!(p.yes_no("C", false).unwrap());
        assert!(p.yes_no("D", true).unwrap());
        let t = transcript(p);
        assert!(
            t.contains("C [y/N]? maybe\nPlease answer y or n (not `maybe`).\nC [y/N]? y\n"),
            "{t}"
        );
    }

    #[test]
    fn yes_no_with_junk_then_end_of_input_takes_the_default() {
        let mut p = prompter("perhaps\n");
        assert!(!p.yes_no("Replace", false).unwrap());
    }

    #[test]
    fn valid_re_asks_with_the_reason_naming_the_input() {
        let mut p = prompter("70000\nabc\n1230\n");
        let port = p
            .valid("Port", "1229", |s| {
                s.parse::<u16>().map_err(|_| format!("port `{s}` is not valid"))
            })
            .unwrap();
        assert_eq!(port, 1230);
        let t = transcript(p);
        assert!(
            t.contains("Port [1229]: 70000\nport `70000` is not valid\n"),
            "{t}"
        );
        assert!(t.contains("port `abc` is not valid\nPort [1229]: 1230\n"), "{t}");
    }

    #[test]
    fn valid_refuses_quotes_before_the_check() {
        let mut p = prompter("a\"b\nok\n");
        let v = p.valid("Name", "x", |s| Ok(s.to_owned())).unwrap();
        assert_eq!(v, "ok");
        assert!(transcript(p).contains("`a\"b` contains `\"`"));
    }

    #[test]
    fn valid_stops_when_the_input_ends_on_a_refused_answer() {
        let mut p = prompter("bad\n");
        let r: Result<u8, _> = p.valid("Port", "also bad", |s| Err(format!("no: {s}")));
        match r {
            Err(DialogueError::InputEnded { prompt }) => assert_eq!(prompt, "Port"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_items_end_on_an_empty_line_done_or_end_of_input() {
        let mut p = prompter("a\nbad\nb\n\nc\ndone\nd\n");
        let check = |s: &str| {
            if s == "bad" {
                Err("no".to_owned())
            } else {
                Ok(s.to_owned())
            }
        };
        let mut got = Vec::new();
        while let Some(v) = p.list_item("VM", check).unwrap() {
            got.push(v);
        }
        assert_eq!(got, ["a", "b"]);
        assert_eq!(p.list_item("VM", check).unwrap().as_deref(), Some("c"));
        assert_eq!(p.list_item("VM", check).unwrap(), None);
        assert_eq!(p.list_item("VM", check).unwrap().as_deref(), Some("d"));
        assert_eq!(p.list_item("VM", check).unwrap(), None);
        assert_eq!(p.list_item("VM", check).unwrap(), None);
        assert!(transcript(p).contains("VM [done]: bad\nno\nVM [done]: b\n"));
    }

    #[test]
    fn over_long_lines_are_cut_and_the_rest_discarded() {
        let input = format!("{}\nnext\n", "x".repeat(MAX_ANSWER * 2));
        let mut p = Prompter::new(input.as_bytes(), Vec::new(), false);
        assert_eq!(p.text("A", "d").unwrap().len(), MAX_ANSWER);
        assert_eq!(p.text("B", "d").unwrap(), "next");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut p = Prompter::new(&b"\xff\xfe\n"[..], Vec::new(), false);
        assert_eq!(p.text("A", "d").unwrap(), "\u{fffd}\u{fffd}");
    }
}

//! A minimal `sh -c` for exec: words with quotes and backslashes, `&&`, `||`, `;`, pipelines
//! (`|`), redirections (`>`, `>>`, `2>`, `2>&1`, `/dev/null`) and `set -e`; every command is a
//! built-in from `commands.rs`. No variables, globs or control flow.

use std::fs;
use std::io::Write;

use super::commands::{run, Output};
use super::podfs::PodFs;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    And,
    Or,
    Semi,
    Pipe,
    Out { fd: u8, append: bool },
    ErrToOut,
}

fn tokenize(script: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = script.chars().peekable();
    let flush = |cur: &mut String, in_word: &mut bool, toks: &mut Vec<Tok>| {
        if *in_word {
            toks.push(Tok::Word(std::mem::take(cur)));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("sh: unterminated quoted string".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => {
                            if let Some(ch) = chars.next() {
                                cur.push(ch);
                            }
                        }
                        Some(ch) => cur.push(ch),
                        None => return Err("sh: unterminated quoted string".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    cur.push(ch);
                }
            }
            ' ' | '\t' | '\n' => flush(&mut cur, &mut in_word, &mut toks),
            ';' => {
                flush(&mut cur, &mut in_word, &mut toks);
                toks.push(Tok::Semi);
            }
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                flush(&mut cur, &mut in_word, &mut toks);
                toks.push(Tok::And);
            }
            '|' if chars.peek() == Some(&'|') => {
                chars.next();
                flush(&mut cur, &mut in_word, &mut toks);
                toks.push(Tok::Or);
            }
            '|' => {
                flush(&mut cur, &mut in_word, &mut toks);
                toks.push(Tok::Pipe);
            }
            '>' => {
                let fd = if in_word && (cur == "2" || cur == "1") {
                    let fd = if cur == "2" { 2 } else { 1 };
                    cur.clear();
                    in_word = false;
                    fd
                } else {
                    flush(&mut cur, &mut in_word, &mut toks);
                    1
                };
                if chars.peek() == Some(&'&') {
                    chars.next();
                    if chars.next() == Some('1') && fd == 2 {
                        toks.push(Tok::ErrToOut);
                        continue;
                    }
                    return Err("sh: unsupported redirection".into());
                }
                let append = chars.peek() == Some(&'>');
                if append {
                    chars.next();
                }
                toks.push(Tok::Out { fd, append });
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    flush(&mut cur, &mut in_word, &mut toks);
    Ok(toks)
}

struct Simple {
    argv: Vec<String>,
    redirects: Vec<(u8, bool, String)>,
    err_to_out: bool,
}

fn parse_simple(toks: &[Tok]) -> Result<Simple, String> {
    let mut s = Simple {
        argv: Vec::new(),
        redirects: Vec::new(),
        err_to_out: false,
    };
    let mut it = toks.iter();
    while let Some(t) = it.next() {
        match t {
            Tok::Word(w) => s.argv.push(w.clone()),
            Tok::Out { fd, append } => match it.next() {
                Some(Tok::Word(target)) => s.redirects.push((*fd, *append, target.clone())),
                _ => return Err("sh: syntax error: redirection without a target".into()),
            },
            Tok::ErrToOut => s.err_to_out = true,
            _ => return Err("sh: syntax error".into()),
        }
    }
    Ok(s)
}

fn run_pipeline(fs: &PodFs, toks: &[Tok], stdin: &[u8]) -> Output {
    let stages: Vec<&[Tok]> = toks.split(|t| *t == Tok::Pipe).collect();
    let mut input = stdin.to_vec();
    let mut stderr = Vec::new();
    let mut last = Output::default();
    for stage in stages {
        let simple = match parse_simple(stage) {
            Ok(s) => s,
            Err(e) => return Output::err(2, e),
        };
        if simple.argv.is_empty() {
            return Output::err(2, "sh: syntax error: empty command");
        }
        let mut out = run(fs, &simple.argv, &input);
        if simple.err_to_out {
            let err = std::mem::take(&mut out.stderr);
            out.stdout.extend(err);
        }
        for (fd, append, target) in &simple.redirects {
            let data = if *fd == 2 {
                std::mem::take(&mut out.stderr)
            } else {
                std::mem::take(&mut out.stdout)
            };
            if target == "/dev/null" {
                continue;
            }
            let res = fs.resolve("/", target).and_then(|p| {
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(*append)
                    .truncate(!*append)
                    .open(p)
                    .map_err(|e| e.to_string())?;
                f.write_all(&data).map_err(|e| e.to_string())
            });
            if let Err(e) = res {
                out.stderr
                    .extend(format!("sh: cannot create {target}: {e}\n").as_bytes());
                out.code = 2;
            }
        }
        stderr.extend(std::mem::take(&mut out.stderr));
        input = std::mem::take(&mut out.stdout);
        last = out;
    }
    Output {
        stdout: input,
        stderr,
        code: last.code,
    }
}

/// `sh -c SCRIPT` (or a script on stdin).
pub fn sh(fs: &PodFs, args: &[String], stdin: &[u8]) -> Output {
    let script = match args {
        [flag, script, ..] if flag == "-c" => script.clone(),
        [flag, script, ..] if flag == "-ec" || flag == "-ce" => format!("set -e; {script}"),
        _ => String::from_utf8_lossy(stdin).into_owned(),
    };
    let toks = match tokenize(&script) {
        Ok(t) => t,
        Err(e) => return Output::err(2, e),
    };
    let mut result = Output::default();
    let mut errexit = false;
    let mut pending: Option<Tok> = None;
    let mut first_stdin = Some(stdin);
    let mut rest: &[Tok] = &toks;
    loop {
        let end = rest
            .iter()
            .position(|t| matches!(t, Tok::And | Tok::Or | Tok::Semi))
            .unwrap_or(rest.len());
        let (cmd, tail) = rest.split_at(end);
        let skip = match pending {
            Some(Tok::And) => result.code != 0,
            Some(Tok::Or) => result.code == 0,
            _ => false,
        };
        if !cmd.is_empty() && !skip {
            if cmd == [Tok::Word("set".into()), Tok::Word("-e".into())] {
                errexit = true;
            } else {
                let out = run_pipeline(fs, cmd, first_stdin.take().unwrap_or(&[]));
                result.stdout.extend(out.stdout);
                result.stderr.extend(out.stderr);
                result.code = out.code;
                if errexit && result.code != 0 && pending != Some(Tok::Or) {
                    let next_is_or = tail.first() == Some(&Tok::Or);
                    if !next_is_or {
                        return result;
                    }
                }
            }
        }
        match tail.split_first() {
            Some((op, after)) => {
                pending = Some(op.clone());
                rest = after;
            }
            None => break,
        }
    }
    result
}

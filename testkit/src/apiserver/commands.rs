//! The built-in commands exec runs against a pod's file system: tar (create/extract),
//! sha256sum (with -c), test, mkdir, mv, cp, rm, cat, ls, echo, printf, touch, tail/head -c,
//! wc -c, stat -c %s, true/false, and `sh -c` (see `shell.rs`).

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::podfs::{self, PodFs};
use super::util;

/// What a command printed and its exit code.
#[derive(Debug, Default, Clone)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub code: i32,
}

impl Output {
    /// A failure with `msg` on stderr.
    pub fn err(code: i32, msg: impl AsRef<str>) -> Output {
        Output {
            stdout: Vec::new(),
            stderr: format!("{}\n", msg.as_ref()).into_bytes(),
            code,
        }
    }
}

/// Whether the command reads its standard input (exec then waits for stdin to close).
pub fn needs_stdin(argv: &[String]) -> bool {
    match argv.first().map(String::as_str) {
        Some("tar") => tar_opts(argv).is_ok_and(|o| o.mode == 'x' || o.mode == 't'),
        Some("cat") | Some("sha256sum") | Some("tail") | Some("head") | Some("wc") => {
            argv.len() == 1
                || argv.iter().skip(1).any(|a| a == "-")
                || (argv[0] == "sha256sum" && argv.iter().any(|a| a == "-c") && argv.len() == 2)
        }
        Some("sh") | Some("bash") => true,
        _ => false,
    }
}

/// Runs `argv` with `stdin` in the pod file system (working directory `/`).
pub fn run(fs: &PodFs, argv: &[String], stdin: &[u8]) -> Output {
    let Some(cmd) = argv.first() else {
        return Output::err(126, "no command");
    };
    let args = &argv[1..];
    let name = cmd.rsplit('/').next().unwrap_or(cmd);
    match name {
        "tar" => tar(fs, argv, stdin),
        "sha256sum" => sha256sum(fs, args, stdin),
        "test" | "[" => test(fs, args),
        "mkdir" => mkdir(fs, args),
        "mv" => mv(fs, args),
        "cp" => cp(fs, args),
        "rm" => rm(fs, args),
        "cat" => cat(fs, args, stdin),
        "ls" => ls(fs, args),
        "echo" => echo(args),
        "printf" => printf(args),
        "touch" => touch(fs, args),
        "tail" | "head" => tail_head(fs, name, args, stdin),
        "wc" => wc(fs, args, stdin),
        "stat" => stat(fs, args),
        "true" => Output::default(),
        "false" => Output {
            code: 1,
            ..Output::default()
        },
        "sh" | "bash" => super::shell::sh(fs, args, stdin),
        other => Output::err(
            127,
            format!("exec: \"{other}\": executable file not found in $PATH"),
        ),
    }
}

fn resolve(fs: &PodFs, p: &str) -> Result<std::path::PathBuf, Output> {
    fs.resolve("/", p).map_err(|e| Output::err(1, e))
}

struct TarOpts {
    mode: char,
    file: Option<String>,
    dir: Option<String>,
    paths: Vec<String>,
}

fn tar_opts(argv: &[String]) -> Result<TarOpts, String> {
    let mut o = TarOpts {
        mode: ' ',
        file: None,
        dir: None,
        paths: Vec::new(),
    };
    let mut it = argv.iter().skip(1).peekable();
    let mut first = true;
    while let Some(a) = it.next() {
        if let Some(long) = a.strip_prefix("--") {
            match long.split_once('=') {
                Some(("directory", d)) => o.dir = Some(d.to_string()),
                Some(("file", f)) => o.file = Some(f.to_string()),
                _ => match long {
                    "extract" | "get" => o.mode = 'x',
                    "create" => o.mode = 'c',
                    "list" => o.mode = 't',
                    "directory" => o.dir = it.next().cloned(),
                    "file" => o.file = it.next().cloned(),
                    "gzip" | "gunzip" | "ungzip" => {
                        return Err("tar: gzip is not supported by the test API server".into())
                    }
                    _ => {} // --no-same-owner, --no-same-permissions, --touch, ...
                },
            }
        } else if (a.starts_with('-') && a.len() > 1) || (first && !a.starts_with('-')) {
            for ch in a.trim_start_matches('-').chars() {
                match ch {
                    'x' | 'c' | 't' => o.mode = ch,
                    'f' => o.file = it.next().cloned(),
                    'C' => o.dir = it.next().cloned(),
                    'z' => return Err("tar: gzip is not supported by the test API server".into()),
                    _ => {} // m, v, p, o, ...
                }
            }
        } else {
            o.paths.push(a.clone());
        }
        first = false;
    }
    if o.mode == ' ' {
        return Err("tar: You must specify one of the '-Acdtrux' options".into());
    }
    match o.file.as_deref() {
        Some("-") | None => Ok(o),
        Some(f) => Err(format!(
            "tar: {f}: only '-' (standard input/output) is supported as the archive"
        )),
    }
}

fn tar(fs: &PodFs, argv: &[String], stdin: &[u8]) -> Output {
    let opts = match tar_opts(argv) {
        Ok(o) => o,
        Err(e) => return Output::err(2, e),
    };
    let dir = podfs::normalize("/", opts.dir.as_deref().unwrap_or("/"));
    match opts.mode {
        'x' => tar_extract(fs, &dir, stdin),
        't' => tar_list(stdin),
        _ => tar_create(fs, &dir, &opts.paths),
    }
}

fn tar_list(stdin: &[u8]) -> Output {
    let mut out = Output::default();
    let mut archive = tar::Archive::new(stdin);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return Output::err(2, format!("tar: {e}")),
    };
    for entry in entries {
        match entry.and_then(|e| Ok(e.path()?.to_string_lossy().into_owned())) {
            Ok(p) => out.stdout.extend(format!("{p}\n").as_bytes()),
            Err(e) => return Output::err(2, format!("tar: {e}")),
        }
    }
    out
}

/// `tar x…` reading its archive from a stream (exec feeds it while the websocket delivers),
/// so a large archive is never held in memory. None when `argv` is not a tar extraction.
pub fn tar_extract_streaming(
    fs: &PodFs,
    argv: &[String],
    stdin: impl std::io::Read,
) -> Option<Output> {
    let opts = tar_opts(argv).ok()?;
    if opts.mode != 'x' {
        return None;
    }
    let dir = podfs::normalize("/", opts.dir.as_deref().unwrap_or("/"));
    Some(tar_extract(fs, &dir, stdin))
}

/// Whether `argv` is `tar` extracting from standard input.
pub fn is_tar_extract(argv: &[String]) -> bool {
    argv.first().map(String::as_str) == Some("tar") && tar_opts(argv).is_ok_and(|o| o.mode == 'x')
}

fn tar_extract(fs: &PodFs, dir: &str, stdin: impl std::io::Read) -> Output {
    let mut out = Output::default();
    let base = match resolve(fs, dir) {
        Ok(b) => b,
        Err(o) => return o,
    };
    if !base.is_dir() {
        return Output::err(
            2,
            format!("tar: {dir}: Cannot open: No such file or directory"),
        );
    }
    let mut archive = tar::Archive::new(stdin);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => return Output::err(2, format!("tar: {e}")),
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return Output::err(2, format!("tar: {e}")),
        };
        let raw = match entry.path() {
            Ok(p) => p.into_owned(),
            Err(e) => return Output::err(2, format!("tar: {e}")),
        };
        let Some(member) = podfs::safe_member(&raw) else {
            out.stderr
                .extend(format!("tar: {}: Member name contains '..'\n", raw.display()).as_bytes());
            out.code = 2;
            continue;
        };
        if member.as_os_str().is_empty() {
            continue;
        }
        let pod_path = format!("{dir}/{}", member.to_string_lossy());
        let target = match fs.resolve("/", &pod_path) {
            Ok(t) => t,
            Err(e) => {
                out.stderr.extend(format!("tar: {e}\n").as_bytes());
                out.code = 2;
                continue;
            }
        };
        let kind = entry.header().entry_type();
        let result = if kind.is_dir() {
            fs::create_dir_all(&target)
        } else if kind.is_file() {
            write_entry(&mut entry, &target)
        } else {
            out.stderr.extend(
                format!(
                    "tar: {}: skipping (links and special files are not extracted)\n",
                    member.display()
                )
                .as_bytes(),
            );
            Ok(())
        };
        if let Err(e) = result {
            out.stderr
                .extend(format!("tar: {}: Cannot write: {e}\n", member.display()).as_bytes());
            out.code = 2;
        }
    }
    out
}

fn write_entry(entry: &mut impl Read, target: &Path) -> std::io::Result<()> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    // Large writes (io::copy fills a BufWriter's buffer directly), as a real tar's would be.
    let mut f = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(target)?);
    std::io::copy(entry, &mut f)?;
    f.flush()
}

fn tar_create(fs: &PodFs, dir: &str, paths: &[String]) -> Output {
    let mut out = Output::default();
    if paths.is_empty() {
        return Output::err(2, "tar: Cowardly refusing to create an empty archive");
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut warned = false;
    for p in paths {
        let member = if p.starts_with('/') {
            if !warned {
                out.stderr
                    .extend(b"tar: Removing leading `/' from member names\n");
                warned = true;
            }
            p.trim_start_matches('/').to_string()
        } else {
            p.clone()
        };
        let host = match fs.resolve(dir, p) {
            Ok(h) => h,
            Err(e) => {
                out.stderr.extend(format!("tar: {e}\n").as_bytes());
                out.code = 2;
                continue;
            }
        };
        let member = if member.is_empty() {
            ".".to_string()
        } else {
            member
        };
        let res = if host.is_dir() {
            builder.append_dir_all(&member, &host)
        } else if host.exists() {
            builder.append_path_with_name(&host, &member)
        } else {
            out.stderr
                .extend(format!("tar: {p}: Cannot stat: No such file or directory\n").as_bytes());
            out.code = 2;
            continue;
        };
        if let Err(e) = res {
            out.stderr.extend(format!("tar: {p}: {e}\n").as_bytes());
            out.code = 2;
        }
    }
    match builder.into_inner() {
        Ok(bytes) => out.stdout = bytes,
        Err(e) => return Output::err(2, format!("tar: {e}")),
    }
    if out.code != 0 {
        out.stderr
            .extend(b"tar: Exiting with failure status due to previous errors\n");
    }
    out
}

fn sha256_of(fs: &PodFs, name: &str, stdin: &[u8]) -> Result<String, String> {
    if name == "-" {
        return Ok(util::hex(&Sha256::digest(stdin)));
    }
    let path = fs.resolve("/", name)?;
    if path.is_dir() {
        return Err(format!("sha256sum: {name}: Is a directory"));
    }
    let mut f = fs::File::open(&path)
        .map_err(|_| format!("sha256sum: {name}: No such file or directory"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("sha256sum: {name}: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(util::hex(&hasher.finalize()))
}

fn sha256sum(fs: &PodFs, args: &[String], stdin: &[u8]) -> Output {
    let check = args.iter().any(|a| a == "-c" || a == "--check");
    let quiet = args.iter().any(|a| a == "--quiet");
    let status = args.iter().any(|a| a == "--status");
    let mut files: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-') || *a == "-")
        .map(String::as_str)
        .collect();
    if files.is_empty() {
        files.push("-");
    }
    let mut out = Output::default();
    if !check {
        for f in files {
            match sha256_of(fs, f, stdin) {
                Ok(h) => out.stdout.extend(format!("{h}  {f}\n").as_bytes()),
                Err(e) => {
                    out.stderr.extend(format!("{e}\n").as_bytes());
                    out.code = 1;
                }
            }
        }
        return out;
    }
    let mut failed = 0;
    for list in files {
        let text = if list == "-" {
            String::from_utf8_lossy(stdin).into_owned()
        } else {
            match fs.resolve("/", list).and_then(|p| {
                fs::read_to_string(p)
                    .map_err(|_| format!("sha256sum: {list}: No such file or directory"))
            }) {
                Ok(t) => t,
                Err(e) => {
                    out.stderr.extend(format!("{e}\n").as_bytes());
                    out.code = 1;
                    continue;
                }
            }
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Some((want, name)) = line.split_once(' ') else {
                continue;
            };
            let name = name.trim_start_matches([' ', '*']);
            let ok = sha256_of(fs, name, stdin).is_ok_and(|h| h.eq_ignore_ascii_case(want));
            if !ok {
                failed += 1;
            }
            if status || (ok && quiet) {
                continue;
            }
            let verdict = if ok { "OK" } else { "FAILED" };
            out.stdout.extend(format!("{name}: {verdict}\n").as_bytes());
        }
    }
    if failed > 0 {
        out.code = 1;
        if !status {
            let noun = if failed == 1 { "checksum" } else { "checksums" };
            out.stderr.extend(
                format!("sha256sum: WARNING: {failed} computed {noun} did NOT match\n").as_bytes(),
            );
        }
    }
    out
}

fn test(fs: &PodFs, args: &[String]) -> Output {
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    if args.last() == Some(&"]") {
        args.pop();
    }
    let (negate, args) = match args.split_first() {
        Some((&"!", rest)) => (true, rest.to_vec()),
        _ => (false, args),
    };
    let result = match args.as_slice() {
        [op, path] if op.starts_with('-') && op.len() == 2 => match *op {
            "-n" => !path.is_empty(),
            "-z" => path.is_empty(),
            _ => match fs.resolve("/", path) {
                Ok(p) => match *op {
                    "-e" | "-r" | "-w" => p.exists(),
                    "-f" => p.is_file(),
                    "-d" => p.is_dir(),
                    "-s" => p.metadata().is_ok_and(|m| m.len() > 0),
                    "-x" => p.exists(),
                    _ => return Output::err(2, format!("test: {op}: unary operator expected")),
                },
                Err(_) => false,
            },
        },
        [a, "=", b] | [a, "==", b] => a == b,
        [a, "!=", b] => a != b,
        [s] => !s.is_empty(),
        [] => false,
        _ => return Output::err(2, "test: too many arguments"),
    };
    Output {
        code: if result != negate { 0 } else { 1 },
        ..Output::default()
    }
}

fn split_flags(args: &[String]) -> (String, Vec<&String>) {
    let mut flags = String::new();
    let mut rest = Vec::new();
    let mut done = false;
    for a in args {
        if !done && a == "--" {
            done = true;
        } else if !done && a.starts_with('-') && a.len() > 1 {
            flags.push_str(a.trim_start_matches('-'));
        } else {
            rest.push(a);
        }
    }
    (flags, rest)
}

fn mkdir(fs: &PodFs, args: &[String]) -> Output {
    let (flags, paths) = split_flags(args);
    let parents = flags.contains('p') || flags.contains("parents");
    let mut out = Output::default();
    for p in paths {
        let res = resolve(fs, p).and_then(|path| {
            let r = if parents {
                fs::create_dir_all(&path)
            } else {
                fs::create_dir(&path)
            };
            r.map_err(|e| Output::err(1, format!("mkdir: cannot create directory '{p}': {e}")))
        });
        if let Err(o) = res {
            out.stderr.extend(o.stderr);
            out.code = 1;
        }
    }
    out
}

fn mv(fs: &PodFs, args: &[String]) -> Output {
    let (_, paths) = split_flags(args);
    let [src, dst] = paths.as_slice() else {
        return Output::err(1, "mv: expected SOURCE DEST");
    };
    let (s, mut d) = match (resolve(fs, src), resolve(fs, dst)) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    if d.is_dir() {
        if let Some(name) = s.file_name() {
            d = d.join(name);
        }
    }
    match fs::rename(&s, &d) {
        Ok(()) => Output::default(),
        Err(e) => Output::err(1, format!("mv: cannot move '{src}' to '{dst}': {e}")),
    }
}

fn copy_recursive(src: &Path, dst: &Path) -> std::io::Result<()> {
    if src.is_dir() {
        fs::create_dir_all(dst)?;
        for entry in fs::read_dir(src)? {
            let entry = entry?;
            copy_recursive(&entry.path(), &dst.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs::copy(src, dst).map(|_| ())
    }
}

fn cp(fs: &PodFs, args: &[String]) -> Output {
    let (flags, paths) = split_flags(args);
    let [src, dst] = paths.as_slice() else {
        return Output::err(1, "cp: expected SOURCE DEST");
    };
    let (s, mut d) = match (resolve(fs, src), resolve(fs, dst)) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    if s.is_dir() && !(flags.contains('r') || flags.contains('R') || flags.contains('a')) {
        return Output::err(
            1,
            format!("cp: -r not specified; omitting directory '{src}'"),
        );
    }
    if d.is_dir() {
        if let Some(name) = s.file_name() {
            d = d.join(name);
        }
    }
    match copy_recursive(&s, &d) {
        Ok(()) => Output::default(),
        Err(e) => Output::err(1, format!("cp: cannot copy '{src}': {e}")),
    }
}

fn rm(fs: &PodFs, args: &[String]) -> Output {
    let (flags, paths) = split_flags(args);
    let recursive = flags.contains('r') || flags.contains('R');
    let force = flags.contains('f');
    let mut out = Output::default();
    for p in paths {
        let path = match resolve(fs, p) {
            Ok(path) => path,
            Err(o) => {
                out.stderr.extend(o.stderr);
                out.code = 1;
                continue;
            }
        };
        let res = if path.is_dir() {
            if recursive {
                fs::remove_dir_all(&path)
            } else {
                out.stderr
                    .extend(format!("rm: cannot remove '{p}': Is a directory\n").as_bytes());
                out.code = 1;
                continue;
            }
        } else if path.symlink_metadata().is_ok() {
            fs::remove_file(&path)
        } else if force {
            Ok(())
        } else {
            out.stderr
                .extend(format!("rm: cannot remove '{p}': No such file or directory\n").as_bytes());
            out.code = 1;
            continue;
        };
        if let Err(e) = res {
            out.stderr
                .extend(format!("rm: cannot remove '{p}': {e}\n").as_bytes());
            out.code = 1;
        }
    }
    out
}

fn cat(fs: &PodFs, args: &[String], stdin: &[u8]) -> Output {
    let mut out = Output::default();
    if args.is_empty() {
        out.stdout = stdin.to_vec();
        return out;
    }
    for f in args {
        if f == "-" {
            out.stdout.extend(stdin);
            continue;
        }
        match fs
            .resolve("/", f)
            .and_then(|p| fs::read(p).map_err(|e| e.to_string()))
        {
            Ok(bytes) => out.stdout.extend(bytes),
            Err(_) => {
                out.stderr
                    .extend(format!("cat: {f}: No such file or directory\n").as_bytes());
                out.code = 1;
            }
        }
    }
    out
}

fn ls(fs: &PodFs, args: &[String]) -> Output {
    let (flags, paths) = split_flags(args);
    let all = flags.contains('a');
    let default = "/".to_string();
    let paths = if paths.is_empty() {
        vec![&default]
    } else {
        paths
    };
    let mut out = Output::default();
    for p in paths {
        let path = match resolve(fs, p) {
            Ok(path) => path,
            Err(o) => return o,
        };
        if path.is_file() {
            out.stdout.extend(format!("{p}\n").as_bytes());
            continue;
        }
        match fs::read_dir(&path) {
            Ok(rd) => {
                let mut names: Vec<String> = rd
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| all || !n.starts_with('.'))
                    .collect();
                names.sort();
                for n in names {
                    out.stdout.extend(format!("{n}\n").as_bytes());
                }
            }
            Err(_) => {
                out.stderr.extend(
                    format!("ls: cannot access '{p}': No such file or directory\n").as_bytes(),
                );
                out.code = 2;
            }
        }
    }
    out
}

fn echo(args: &[String]) -> Output {
    let (newline, words) = match args.first().map(String::as_str) {
        Some("-n") => (false, &args[1..]),
        _ => (true, args),
    };
    let mut s = words.join(" ");
    if newline {
        s.push('\n');
    }
    Output {
        stdout: s.into_bytes(),
        ..Output::default()
    }
}

fn printf(args: &[String]) -> Output {
    let Some((fmt, rest)) = args.split_first() else {
        return Output::err(1, "printf: usage: printf format [arguments]");
    };
    let mut rest = rest.iter();
    let mut s = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => s.push('\n'),
                Some('t') => s.push('\t'),
                Some('\\') => s.push('\\'),
                Some(o) => {
                    s.push('\\');
                    s.push(o);
                }
                None => s.push('\\'),
            },
            '%' => match chars.next() {
                Some('s') | Some('d') => s.push_str(rest.next().map(String::as_str).unwrap_or("")),
                Some('%') => s.push('%'),
                Some(o) => {
                    s.push('%');
                    s.push(o);
                }
                None => s.push('%'),
            },
            c => s.push(c),
        }
    }
    Output {
        stdout: s.into_bytes(),
        ..Output::default()
    }
}

fn touch(fs: &PodFs, args: &[String]) -> Output {
    let (_, paths) = split_flags(args);
    for p in paths {
        let res = resolve(fs, p).and_then(|path| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(|_| ())
                .map_err(|e| Output::err(1, format!("touch: cannot touch '{p}': {e}")))
        });
        if let Err(o) = res {
            return o;
        }
    }
    Output::default()
}

fn read_input(
    fs: &PodFs,
    file: Option<&String>,
    stdin: &[u8],
    cmd: &str,
) -> Result<Vec<u8>, Output> {
    match file.map(String::as_str) {
        None | Some("-") => Ok(stdin.to_vec()),
        Some(f) => fs
            .resolve("/", f)
            .and_then(|p| fs::read(p).map_err(|e| e.to_string()))
            .map_err(|_| {
                Output::err(
                    1,
                    format!("{cmd}: cannot open '{f}' for reading: No such file or directory"),
                )
            }),
    }
}

/// `tail -c +N` / `tail -c N` / `head -c N` (bytes only).
fn tail_head(fs: &PodFs, cmd: &str, args: &[String], stdin: &[u8]) -> Output {
    let mut count: Option<String> = None;
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-c" {
            count = it.next().cloned();
        } else if let Some(n) = a.strip_prefix("-c") {
            count = Some(n.to_string());
        } else {
            file = Some(a);
        }
    }
    let Some(count) = count else {
        return Output::err(
            1,
            format!("{cmd}: only -c is supported by the test API server"),
        );
    };
    let data = match read_input(fs, file, stdin, cmd) {
        Ok(d) => d,
        Err(o) => return o,
    };
    let from_start = count.starts_with('+');
    let Ok(n) = count.trim_start_matches('+').parse::<usize>() else {
        return Output::err(1, format!("{cmd}: invalid number of bytes: '{count}'"));
    };
    let slice = match (cmd, from_start) {
        ("tail", true) => &data[n.saturating_sub(1).min(data.len())..],
        ("tail", false) => &data[data.len().saturating_sub(n)..],
        _ => &data[..n.min(data.len())],
    };
    Output {
        stdout: slice.to_vec(),
        ..Output::default()
    }
}

fn wc(fs: &PodFs, args: &[String], stdin: &[u8]) -> Output {
    let (flags, files) = split_flags(args);
    if !flags.contains('c') {
        return Output::err(1, "wc: only -c is supported by the test API server");
    }
    match read_input(fs, files.first().copied(), stdin, "wc") {
        Ok(d) => {
            let line = match files.first() {
                Some(f) => format!("{} {f}\n", d.len()),
                None => format!("{}\n", d.len()),
            };
            Output {
                stdout: line.into_bytes(),
                ..Output::default()
            }
        }
        Err(o) => o,
    }
}

fn stat(fs: &PodFs, args: &[String]) -> Output {
    let mut format = None;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "--format" => format = it.next().cloned(),
            _ => files.push(a),
        }
    }
    if format.as_deref() != Some("%s") {
        return Output::err(1, "stat: only -c %s is supported by the test API server");
    }
    let mut out = Output::default();
    for f in files {
        match fs
            .resolve("/", f)
            .and_then(|p| fs::metadata(p).map_err(|e| e.to_string()))
        {
            Ok(m) => out.stdout.extend(format!("{}\n", m.len()).as_bytes()),
            Err(_) => {
                out.stderr.extend(
                    format!("stat: cannot statx '{f}': No such file or directory\n").as_bytes(),
                );
                out.code = 1;
            }
        }
    }
    out
}

//! Output files that are either complete or absent. [`AtomicFile`] writes to a temporary name in
//! the target's directory and renames it over the target on [`AtomicFile::commit`]; an error
//! (the file dropped uncommitted) or an interruption (the binary's signal handler calls
//! [`remove_unfinished`]) leaves no half-written file, and an existing target as it was.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Temporaries not yet committed, removed when the process is interrupted.
static UNFINISHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn unfinished() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    UNFINISHED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes every temporary not yet committed (on Ctrl+C, before exiting).
pub fn remove_unfinished() {
    for p in unfinished().drain(..) {
        let _ = std::fs::remove_file(p);
    }
}

/// A buffered file that appears under its name only when complete.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `target` (as `.NAME.PID.tmp` next to it).
    pub fn create(target: &Path) -> io::Result<Self> {
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = target.with_file_name(tmp_name);
        let file = File::create(&tmp)?;
        unfinished().push(tmp.clone());
        Ok(AtomicFile {
            target: target.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> io::Result<()> {
        let out = self.out.take().expect("an uncommitted file has its writer");
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.target)?;
        unfinished().retain(|p| p != &self.tmp);
        Ok(())
    }
}

impl AtomicFile {
    /// The error, naming the file the user asked for (a full disk says where).
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.target.display()))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.out.as_mut().map_or(Ok(0), |o| o.write(buf));
        r.map_err(|e| self.named(e))
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let r = match self.out.as_mut() {
            Some(o) => o.write_all(buf),
            None => Err(io::Error::other("file already committed")),
        };
        r.map_err(|e| self.named(e))
    }
    fn flush(&mut self) -> io::Result<()> {
        let r = self.out.as_mut().map_or(Ok(()), BufWriter::flush);
        r.map_err(|e| self.named(e))
    }
}

impl Drop for AtomicFile {
    /// Not committed: the output is incomplete, so it never appears.
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
            unfinished().retain(|p| p != &self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("manus-out-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// `remove_unfinished` sweeps every unfinished file of the process: tests that create
    /// files take turns, or one test's sweep deletes another's file mid-write.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn the_target_appears_only_when_committed() {
        let _turn = serial();
        let d = dir("commit");
        let target = d.join("out.csv");
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"a,b\n1,2\n").unwrap();
        assert!(!target.exists(), "not before commit");
        assert_eq!(names(&d).len(), 1);
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"a,b\n1,2\n");
        assert_eq!(names(&d), ["out.csv"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn write_errors_name_the_target_and_keep_their_kind() {
        let _turn = serial();
        let d = dir("named");
        let target = d.join("trades.csv");
        let f = AtomicFile::create(&target).unwrap();
        let e = f.named(io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(
            e.to_string()
                .starts_with(&format!("{}: ", target.display())),
            "{e}"
        );
        drop(f);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_unfinished_file_leaves_the_old_target_untouched() {
        let _turn = serial();
        struct Case {
            name: &'static str,
            end: fn(AtomicFile),
        }
        let cases = [
            Case {
                name: "dropped (an error)",
                end: drop,
            },
            Case {
                name: "interrupted",
                end: |f| {
                    remove_unfinished();
                    std::mem::forget(f); // the process exits without unwinding
                },
            },
        ];
        for c in cases {
            let d = dir("unfinished");
            let target = d.join("report.html");
            std::fs::write(&target, "old, complete").unwrap();
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"new, cut mid-").unwrap();
            f.flush().unwrap();
            (c.end)(f);
            assert_eq!(names(&d), ["report.html"], "{}", c.name);
            assert_eq!(
                std::fs::read_to_string(&target).unwrap(),
                "old, complete",
                "{}",
                c.name
            );
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}

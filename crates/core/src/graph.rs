//! The engine's graph of streaming nodes, shared by its strategies: each indicator, swing
//! tracker or SMC detector is stepped once per candle however many strategies read it.
//!
//! The nodes are those of the rule language ([`crate::rules`]): a flat list in dependency
//! order, deduplicated by identity (same function, same arguments, same inputs). A strategy
//! opts in through [`crate::strategy::Strategy::share`], which adds its nodes with a
//! [`GraphBuilder`] when the engine is built, and then decides from the stepped [`Graph`] in
//! [`crate::strategy::Strategy::decide`]. The graph is a plain `Vec` inside the engine, so the
//! engine stays `Clone` (a provisional evaluation works on a copy).
//!
//! Failures stay per strategy: a node that errors (an `on(...)` timeframe the stream does not
//! tile) or panics is marked, with every node reading it, and only the strategies whose nodes
//! are marked fail on that candle; a panicking node is started over, the others go on.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::model::Candle;
use crate::rules::compile::Compiler;
use crate::rules::eval::{Det, Ix, Node, OUTS, Program};

/// Adds strategies' nodes to an engine's graph, reusing identical ones.
#[derive(Debug)]
pub struct GraphBuilder {
    pub(crate) c: Compiler,
}

impl Default for GraphBuilder {
    fn default() -> Self {
        GraphBuilder {
            c: Compiler::shared(),
        }
    }
}

impl GraphBuilder {
    /// The graph, ready to be stepped.
    pub fn finish(self) -> Graph {
        let mut prog = self.c.prog;
        let scheduled = prog.schedule();
        let eager: Vec<Ix> = self
            .c
            .eager
            .iter()
            .map(|&ix| scheduled[ix as usize])
            .collect();
        let parted = prog.partition(&eager);
        let placed = scheduled.iter().map(|&p| parted[p as usize]).collect();
        Graph {
            prog,
            placed,
            faults: Vec::new(),
            tainted: Vec::new(),
        }
    }
}

/// Streaming nodes stepped once per closed candle, read by the strategies that share them.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub(crate) prog: Program,
    /// Where each node the builder handed out went when the nodes were scheduled.
    placed: Vec<Ix>,
    /// What failed on the last candle.
    faults: Vec<String>,
    /// Per node, `1 +` the index in `faults` of a failure it reads, else `0`; empty when
    /// nothing failed (the common case costs one length check).
    tainted: Vec<u32>,
}

impl Graph {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.prog.nodes.len()
    }

    /// True when no strategy shares anything.
    pub fn is_empty(&self) -> bool {
        self.prog.nodes.is_empty()
    }

    /// Steps every node over one closed candle. A node that errors or panics gets no value
    /// (`NaN`) on this candle and is recorded; a panicking one is reset. The rest go on.
    pub fn step(&mut self, c: &Candle) {
        if self.prog.nodes.is_empty() {
            // No strategy shares: nothing to step, not even the panic guard.
            return;
        }
        if !self.faults.is_empty() {
            self.faults.clear();
            self.tainted.clear();
        }
        let mut start = 0;
        loop {
            let prog = &mut self.prog;
            let failed = match catch_unwind(AssertUnwindSafe(|| prog.step_from(c, start))) {
                Ok(Ok(())) => break,
                Ok(Err((i, e))) => (i, e.to_string()),
                Err(panic) => {
                    let i = self.prog.at;
                    // Its state may be half-updated: start it over rather than trust it.
                    self.prog.reset_node(i);
                    (i, format!("panicked: {}", panic_message(&*panic)))
                }
            };
            let (i, msg) = failed;
            self.prog.vals[i] = f64::NAN;
            self.prog.outs[i] = [f64::NAN; OUTS];
            self.faults.push(msg);
            if self.tainted.is_empty() {
                self.tainted = vec![0; self.prog.nodes.len()];
            }
            self.tainted[i] = self.faults.len() as u32;
            start = i + 1;
        }
        if !self.faults.is_empty() {
            // Children come first: one pass carries each failure to every node reading it.
            for i in 0..self.prog.nodes.len() {
                if self.tainted[i] == 0 {
                    let from = self.prog.nodes[i]
                        .children()
                        .into_iter()
                        .flatten()
                        .map(|ix| self.tainted[ix as usize])
                        .find(|&t| t != 0);
                    self.tainted[i] = from.unwrap_or(0);
                }
            }
        }
    }

    /// Where node `ix`, as the builder handed it out, stands in the finished graph: the index
    /// the graph's lookups take from then on (see [`Strategy::placed`]).
    ///
    /// [`Strategy::placed`]: crate::strategy::Strategy::placed
    pub fn place(&self, ix: u32) -> u32 {
        self.placed[ix as usize]
    }

    /// What node `ix` (or a node it reads) failed with on the last candle, if anything.
    pub(crate) fn fault(&self, ix: Ix) -> Option<&str> {
        if self.tainted.is_empty() {
            return None;
        }
        match self.tainted[ix as usize] {
            0 => None,
            t => Some(self.faults[t as usize - 1].as_str()),
        }
    }

    /// Detector `ix`, or what it (or a node it reads) failed with on the last candle.
    pub(crate) fn det(&self, ix: Ix) -> Result<&Det, &str> {
        if let Some(f) = self.fault(ix) {
            return Err(f);
        }
        match &self.prog.nodes[ix as usize] {
            Node::Smc(d, ..) => Ok(d),
            _ => Err("not a detector node"),
        }
    }

    /// Forgets all history.
    pub fn reset(&mut self) {
        self.prog.reset();
        self.faults.clear();
        self.tainted.clear();
    }
}

/// A panic's message, when it has one.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

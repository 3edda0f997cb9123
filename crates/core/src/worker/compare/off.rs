//! Canary comparison, off: the same interface as `on.rs`, doing nothing, so
//! that a build without the `compare` feature carries no comparison code
//! (the compiler drops every call) and refuses a configuration that asks
//! for it.

use crate::config::{MirrorPolicy, PluginConfig};
use crate::dispatch::outcome::{AnswerHead, CallEnd};
use crate::mirror::request::RequestHead;
use crate::telemetry::series::Series;
use crate::telemetry::ResponseClass;
use crate::worker::host::{Reporting, Telemetry};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

/// Whether this build compares answers.
pub const ENABLED: bool = false;

/// Why this build refuses `config`: it asks for `compare`.
pub fn refusal(config: &PluginConfig) -> Option<String> {
    let field = config.first_compare_field()?;
    Some(format!(
        "{field}: this module (vrata_mirror.wasm) does not compare answers; load vrata_mirror_compare.wasm, \
         which `make build` writes beside it"
    ))
}

/// (Each type has a private field so that it is only made the same ways
/// as its `on.rs` twin.)
#[derive(Debug, Default)]
pub struct Limiters(());

#[derive(Debug)]
pub struct CopyCompare(());

impl CopyCompare {
    pub fn admitted(_: &Limiters, _: &Rc<MirrorPolicy>, _: Option<&Rc<MirrorPolicy>>) -> CopyCompare {
        CopyCompare(())
    }
}

pub struct Pairs<I>(PhantomData<I>);

impl<I> Default for Pairs<I> {
    fn default() -> Self {
        Pairs(PhantomData)
    }
}

impl<I> Pairs<I> {
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        true
    }

    pub fn open(&mut self, _: &mut CopyCompare, _: &Rc<Series<I>>, _: &Rc<MirrorPolicy>, _: &mut Watch) {}

    pub fn cancel<H: Reporting<Ids = I>>(_: &RefCell<Self>, _: &CopyCompare, _: &mut H) {}

    pub fn sent<T: Telemetry<Ids = I>>(_: &CopyCompare, _: &mut T, _: &Series<I>) {}

    pub fn shadow_done<H: Reporting<Ids = I>>(
        _: &RefCell<Self>,
        _: &CopyCompare,
        _: &mut H,
        _: &CallEnd,
        _: ResponseClass,
        _: usize,
        _: impl FnOnce() -> Option<Vec<u8>>,
    ) {
    }
}

#[derive(Debug, Default)]
pub struct Watch(());

impl Watch {
    pub fn for_mirrors<'a>(_: impl IntoIterator<Item = (&'a MirrorPolicy, &'a CopyCompare)>) -> Watch {
        Watch(())
    }

    pub fn is_watching(&self) -> bool {
        false
    }

    pub fn describe(&mut self, _: &RequestHead) {}

    pub fn awaits_request_end(&self) -> bool {
        false
    }

    pub fn request_ended(&mut self, _: u64) {}

    pub fn response_headers<H: Reporting>(&mut self, _: &RefCell<Pairs<H::Ids>>, _: &mut H, _: AnswerHead, _: bool) {}

    pub fn response_body<H: Reporting>(
        &mut self,
        _: &RefCell<Pairs<H::Ids>>,
        _: &mut H,
        _: usize,
        _: impl FnOnce() -> Option<Vec<u8>>,
        _: bool,
    ) {
    }

    pub fn response_trailers<H: Reporting>(
        &mut self,
        _: &RefCell<Pairs<H::Ids>>,
        _: &mut H,
        _: usize,
        _: impl FnOnce(&str) -> Option<Vec<u8>>,
    ) {
    }

    pub fn gone<H: Reporting>(&mut self, _: &RefCell<Pairs<H::Ids>>, _: &mut H) {}
}

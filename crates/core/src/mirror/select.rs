//! Which mirrors a request is copied to: the `methods` filter, then sampling.
//! Decided at request headers, asking the host only for what the decision
//! needs (often nothing: a 0 % or 100 % mirror never draws, and only a
//! `methods` or `sampleBy` rule reads a header).

use crate::config::MirrorPolicy;
use crate::sampling::key_draw;
use std::rc::Rc;

/// Single-header lookups on the primary request, answered by the host.
pub trait HeaderLookup {
    fn header(&mut self, name: &str) -> Option<Vec<u8>>;
}

/// A host read made on first need only, then remembered (for one request).
pub(crate) struct Memo<T>(Option<T>);

impl<T> Memo<T> {
    #[inline]
    pub(crate) fn new() -> Self {
        Memo(None)
    }

    /// The value, read now if it was not yet.
    #[inline]
    pub(crate) fn get(&mut self, read: impl FnOnce() -> T) -> &T {
        self.0.get_or_insert_with(read)
    }

    /// The value, read now if it was not yet.
    #[inline]
    pub(crate) fn into_value(self, read: impl FnOnce() -> T) -> T {
        self.0.unwrap_or_else(read)
    }
}

/// The mirrors whose sample this request is in. Mirrors the request's method
/// is not configured for are left out silently: they are not "skipped".
pub fn sampled_mirrors(
    mirrors: &[Rc<MirrorPolicy>],
    headers: &mut impl HeaderLookup,
    draw: &mut impl FnMut() -> u32,
) -> Vec<Rc<MirrorPolicy>> {
    sample(mirrors, headers, |_| draw())
}

/// [`sampled_mirrors`], for a caller whose headers and draws come from one
/// source: `draw` is handed that source.
pub(crate) fn sample<H: HeaderLookup>(
    mirrors: &[Rc<MirrorPolicy>],
    source: &mut H,
    mut draw: impl FnMut(&mut H) -> u32,
) -> Vec<Rc<MirrorPolicy>> {
    let mut chosen = Vec::new();
    let mut method = Memo::new();
    for mirror in mirrors {
        if mirror.rate.is_never() {
            continue;
        }
        if let Some(methods) = &mirror.methods {
            let method = method.get(|| source.header(":method"));
            let allowed = method
                .as_deref()
                .is_some_and(|m| methods.iter().any(|allowed| allowed.as_bytes() == m));
            if !allowed {
                continue;
            }
        }
        let sampled = mirror.rate.is_always() || {
            let value = match &mirror.sample_by {
                Some(name) => source.header(name).map(|key| key_draw(&key)),
                None => None,
            };
            mirror.rate.admits(value.unwrap_or_else(|| draw(source)))
        };
        if sampled {
            chosen.push(mirror.clone());
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    struct Headers {
        list: Vec<(&'static str, &'static str)>,
        lookups: Vec<String>,
    }

    impl HeaderLookup for Headers {
        fn header(&mut self, name: &str) -> Option<Vec<u8>> {
            self.lookups.push(name.to_owned());
            self.list
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes().to_vec())
        }
    }

    fn headers(list: &[(&'static str, &'static str)]) -> Headers {
        Headers {
            list: list.to_vec(),
            lookups: Vec::new(),
        }
    }

    fn mirrors(json: &str) -> Vec<Rc<MirrorPolicy>> {
        parse(format!(r#"{{"forward": {{"mirrors": {json}}}}}"#).as_bytes())
            .unwrap()
            .default_policy
            .mirrors
    }

    #[test]
    fn zero_and_hundred_percent_need_no_host_call_and_no_draw() {
        let list = mirrors(r#"[{"destinationId": "a", "percentage": 0}, {"destinationId": "b"}]"#);
        let mut h = headers(&[(":method", "GET")]);
        let mut draws = 0;
        let chosen = sampled_mirrors(&list, &mut h, &mut || {
            draws += 1;
            0
        });
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].destination, "b");
        assert!(h.lookups.is_empty());
        assert_eq!(draws, 0);
    }

    #[test]
    fn methods_filter_reads_the_method_once() {
        let list = mirrors(
            r#"[{"destinationId": "a", "methods": ["POST"]}, {"destinationId": "b", "methods": ["GET", "POST"]}]"#,
        );
        let mut h = headers(&[(":method", "GET")]);
        let chosen = sampled_mirrors(&list, &mut h, &mut || 0);
        assert_eq!(chosen.iter().map(|m| m.destination.as_str()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(h.lookups, [":method"]);
    }

    #[test]
    fn sample_by_uses_the_key_and_falls_back_to_random_when_absent() {
        let list = mirrors(r#"[{"destinationId": "a", "percentage": 50, "sampleBy": "x-user-id"}]"#);
        // Find one key in and one out of the 50 % sample.
        let key_in = (0..)
            .map(|i| format!("u{i}"))
            .find(|k| key_draw(k.as_bytes()) < 1 << 31)
            .unwrap();
        let key_out = (0..)
            .map(|i| format!("u{i}"))
            .find(|k| key_draw(k.as_bytes()) >= 1 << 31)
            .unwrap();
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let (key_in, key_out) = (leak(key_in), leak(key_out));
        for _ in 0..5 {
            let mut never_drawn = || -> u32 { unreachable!("a present key never draws") };
            assert_eq!(
                sampled_mirrors(&list, &mut headers(&[("x-user-id", key_in)]), &mut never_drawn).len(),
                1
            );
            assert_eq!(
                sampled_mirrors(&list, &mut headers(&[("x-user-id", key_out)]), &mut never_drawn).len(),
                0
            );
        }
        assert_eq!(sampled_mirrors(&list, &mut headers(&[]), &mut || 0).len(), 1);
        assert_eq!(sampled_mirrors(&list, &mut headers(&[]), &mut || u32::MAX).len(), 0);
    }
}

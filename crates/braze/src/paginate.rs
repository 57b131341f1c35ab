//! Pagination as lazy streams: every page of a list endpoint, fetched only when consumed.
//!
//! Braze's list endpoints have no "next" token: `/campaigns/list`, `/canvas/list` and
//! `/segments/list` return pages of 100 numbered from 0, and `/templates/email/list` takes
//! `limit`/`offset`. Either way, the end is the first page shorter than the page size (possibly
//! empty). [`pages`] turns a page-fetching function into a stream of items that stops exactly there.

use std::future::Future;

use futures::Stream;
use futures::stream::{self, TryStreamExt as _};

/// Streams the items of every page: calls `fetch(0)`, `fetch(1)`, ... lazily, yielding each page's
/// items, and stops after the first page with fewer than `page_size` items or at the first error.
pub fn pages<T, E, F, Fut>(page_size: usize, fetch: F) -> impl Stream<Item = Result<T, E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Vec<T>, E>>,
{
    stream::try_unfold((0u32, false, fetch), move |(page, done, mut fetch)| async move {
        if done {
            return Ok(None);
        }
        let items = fetch(page).await?;
        let last = items.len() < page_size;
        Ok(Some((stream::iter(items.into_iter().map(Ok)), (page + 1, last, fetch))))
    })
    .try_flatten()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use futures::StreamExt as _;
    use futures::executor::block_on;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn stops_exactly_at_the_first_short_page(total in 0usize..1000, page_size in 1usize..120) {
            let calls = Cell::new(0u32);
            let all: Vec<usize> = (0..total).collect();
            let got: Vec<usize> = block_on(
                pages(page_size, |page| {
                    calls.set(calls.get() + 1);
                    let start = (page as usize * page_size).min(total);
                    let end = (start + page_size).min(total);
                    let items = all[start..end].to_vec();
                    async move { Ok::<_, String>(items) }
                })
                .try_collect(),
            )
            .unwrap();
            prop_assert_eq!(&got, &all);
            // Full pages are followed by one more request; the first short page ends it.
            prop_assert_eq!(calls.get() as usize, total / page_size + 1);
        }
    }

    #[test]
    fn errors_end_the_stream() {
        let got: Vec<Result<u8, String>> = block_on(
            pages(2, |page| async move {
                if page == 0 {
                    Ok(vec![1, 2])
                } else {
                    Err("boom".to_owned())
                }
            })
            .collect(),
        );
        assert_eq!(got, vec![Ok(1), Ok(2), Err("boom".to_owned())]);
    }
}

//! Pagination as lazy streams: every page of a list endpoint, fetched only when consumed.
//!
//! Braze's list endpoints have no "next" token: `/campaigns/list`, `/canvas/list` and
//! `/segments/list` return pages of 100 numbered from 0, and `/templates/email/list` takes
//! `limit`/`offset`. Either way, the end is the first page shorter than the page size (possibly
//! empty). [`pages`] turns a page-fetching function into a stream of items that stops exactly there;
//! [`all_pages`] does it for a [`PagedRequest`] through any call (a [`crate::BrazeApi`] method, a mock),
//! and [`crate::BrazeClient::list_all`] through the client.
//!
//! ```no_run
//! # async fn run(api: &dyn offerloop_braze::BrazeApi) -> Result<(), offerloop_braze::BrazeError> {
//! use futures::TryStreamExt as _;
//! use offerloop_braze::api::catalog::CampaignListRequest;
//! use offerloop_braze::paginate::all_pages;
//!
//! let campaigns: Vec<_> = all_pages(CampaignListRequest::new(), |r| api.list_campaigns(r)).try_collect().await?;
//! # let _ = campaigns;
//! # Ok(()) }
//! ```

use std::future::Future;

use crate::api::PagedRequest;

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

/// Streams every item of the listing `request` starts: sends `request.with_page(0)`, `with_page(1)`, ...
/// through `call`, lazily, and stops after the first page shorter than `request.page_size()` or at the
/// first error. Any page number already set on `request` is replaced.
pub fn all_pages<R, E, F, Fut>(request: R, mut call: F) -> impl Stream<Item = Result<R::Item, E>>
where
    R: PagedRequest,
    F: FnMut(R) -> Fut,
    Fut: Future<Output = Result<R::Response, E>>,
{
    let page_size = request.page_size();
    pages(page_size, move |page| {
        let response = call(request.with_page(page));
        async move { response.await.map(R::into_items) }
    })
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

//! Functions the page loads on demand.
//!
//! In the page's split build (feature `split`, `.ci/page.sh`), a function declared with
//! [`on_demand!`] is a split point: what only it reaches is in a module of its own, fetched
//! the first time it is called. That fetch can fail (the page's server went away since the
//! page opened): the call then returns [`Unloaded`] instead of stopping the app, and a later
//! call tries again. Without the feature (the background reader, the tests) the function is a
//! plain `async fn` that always returns `Ok`.

use std::fmt;

/// A module of the app could not be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unloaded;

impl fmt::Display for Unloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a part of the app could not be loaded from the server the page came from; \
             check that it is still reachable, then try again",
        )
    }
}

impl From<leptos::wasm_split::SplitLoaderError> for Unloaded {
    fn from(_: leptos::wasm_split::SplitLoaderError) -> Self {
        Unloaded
    }
}

/// Declares `async fn name(args) -> T { body }` as a function loaded on demand, returning
/// `Result<T, Unloaded>` (see the module's documentation). Arguments are plain names with
/// owned types: they cross into the module by value.
macro_rules! on_demand {
    (
        $(#[doc = $doc:expr])*
        $vis:vis async fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $body:block
    ) => {
        $(#[doc = $doc])*
        #[cfg(feature = "split")]
        #[::leptos::wasm_split::wasm_split(
            $name,
            wasm_split_path = ::leptos::wasm_split,
            fallible,
            return_wrapper(
                let future = _;
                { ::core::result::Result::Ok(future?.await) }
                -> ::core::result::Result<$ret, $crate::ui::demand::Unloaded>
            )
        )]
        $vis fn $name($($arg: $ty),*) -> ::core::result::Result<
            ::std::pin::Pin<::std::boxed::Box<dyn ::core::future::Future<Output = $ret>>>,
            $crate::ui::demand::Unloaded,
        > {
            ::core::result::Result::Ok(::std::boxed::Box::pin(async move $body))
        }

        $(#[doc = $doc])*
        #[cfg(not(feature = "split"))]
        $vis async fn $name($($arg: $ty),*) -> ::core::result::Result<$ret, $crate::ui::demand::Unloaded> {
            ::core::result::Result::Ok(async move $body.await)
        }
    };
}
pub(crate) use on_demand;

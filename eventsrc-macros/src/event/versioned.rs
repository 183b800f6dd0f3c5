//! The upcast chain: how a payload stored at an older schema version reaches the current type.
//!
//! A chain is at most one typed step (`upcast_from = Old`: `Old` reads every version up to its
//! own, and `From<Old>` or the JSON steps after it do the rest) followed by JSON steps
//! (`upcast_json = [f, g]`, each taking version `k` to `k + 1`). Payloads at the current version
//! decode straight into the type, never through `serde_json::Value`.
//!
//! Serde is reached through `__private::Json<T>`, so a type without `Serialize` and
//! `Deserialize` fails only the derive's own assertion (the block around this code must import
//! `__private::NotJson`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Path, Type};

pub(super) struct Chain<'a> {
    pub krate: &'a TokenStream,
    /// The current version.
    pub version: u32,
    /// The typed predecessor, if any.
    pub prev: Option<&'a Type>,
    /// JSON steps ending at `version`.
    pub steps: &'a [Path],
}

impl Chain<'_> {
    /// The expression for the oldest version this chain reads.
    pub(super) fn oldest(&self) -> TokenStream {
        let krate = self.krate;
        match self.prev {
            Some(prev) => quote!(<#prev as #krate::Versioned>::OLDEST),
            None => {
                let oldest = self.first_json();
                quote!(#oldest)
            }
        }
    }

    /// The first version the JSON steps start from.
    fn first_json(&self) -> u32 {
        self.version - self.steps.len() as u32
    }

    /// `impl Versioned for #target`, decoding into `#target`.
    pub(super) fn versioned_impl(&self, target: &TokenStream) -> TokenStream {
        let krate = self.krate;
        let version = self.version;
        let oldest = self.oldest();
        let check = self.predecessor_check();
        let body = self.decode_body();
        quote! {
            #check
            #[automatically_derived]
            impl #krate::Versioned for #target {
                const VERSION: u32 = #version;
                const OLDEST: u32 = #oldest;
                #[allow(unused_mut, unused_variables, unreachable_code, clippy::all)]
                fn from_version(
                    event_type: &str,
                    version: u32,
                    payload: &str,
                ) -> ::core::result::Result<Self, #krate::DecodeError> {
                    #body
                }
            }
        }
    }

    /// With JSON steps the typed predecessor is the shape the first step starts from; without,
    /// it is the version just before this one and `From` is the step.
    fn predecessor_check(&self) -> Option<TokenStream> {
        let krate = self.krate;
        let prev = self.prev?;
        let expected = if self.steps.is_empty() {
            self.version - 1
        } else {
            self.first_json()
        };
        let message = format!(
            "`upcast_from` must name the shape of version {expected}: its `#[event(version = ...)]` differs"
        );
        Some(quote! {
            const _: () = ::core::assert!(
                <#prev as #krate::Versioned>::VERSION == #expected,
                #message
            );
        })
    }

    fn decode_body(&self) -> TokenStream {
        let krate = self.krate;
        let version = self.version;
        let head = quote! {
            if version == #version {
                return <#krate::__private::Json<Self>>::decode_current(event_type, version, payload);
            }
            if version > #version {
                return ::core::result::Result::Err(
                    #krate::__private::future_version(event_type, version, #version),
                );
            }
        };
        if self.prev.is_none() && self.steps.is_empty() {
            return quote! {
                #head
                ::core::result::Result::Err(#krate::__private::no_upcast_path(event_type, version, #version))
            };
        }
        let first_json = self.first_json();
        let older = self.older();
        let steps = self.steps();
        quote! {
            #head
            let (mut value, mut at) = if version >= #first_json {
                (#krate::__private::parse_value(event_type, version, payload)?, version)
            } else {
                #older
            };
            #(#steps)*
            <#krate::__private::Json<Self>>::from_value(event_type, version, value)
        }
    }

    /// A payload older than the first JSON step: through the typed predecessor, or an error.
    fn older(&self) -> TokenStream {
        let krate = self.krate;
        let first_json = self.first_json();
        match (self.prev, self.steps.is_empty()) {
            (Some(prev), true) => quote! {
                let old = <#prev as #krate::Versioned>::from_version(event_type, version, payload)?;
                return ::core::result::Result::Ok(<Self as ::core::convert::From<#prev>>::from(old));
            },
            (Some(prev), false) => quote! {
                let old = <#prev as #krate::Versioned>::from_version(event_type, version, payload)?;
                (<#krate::__private::Json<#prev>>::to_value(event_type, version, &old)?, #first_json)
            },
            (None, _) => quote! {
                return ::core::result::Result::Err(
                    #krate::__private::no_upcast_path(event_type, version, #first_json),
                );
            },
        }
    }

    /// One `if` per JSON step, each taking `at` one version up.
    fn steps(&self) -> Vec<TokenStream> {
        let krate = self.krate;
        let first_json = self.first_json();
        let steps = self.steps.iter().enumerate().map(|(i, step)| {
            let from = first_json + i as u32;
            quote! {
                if at == #from {
                    value = #krate::__private::run_step(event_type, at, #step(value))?;
                    at += 1;
                }
            }
        });
        steps.collect()
    }
}

//! `[pricing]`: where the list of model prices is refreshed from. The entries of `[[prices]]`
//! (a provider's multiplier, a model's own price) are apart from these settings.

section! {
    /// `[pricing]`
    "pricing" => Pricing, PricingPatch {
        /// A URL serving a newer price list in genai-prices' `data.json` shape; empty: only the
        /// list bundled with the app (nothing is fetched).
        refresh_url => pricing_refresh_url: String = String::new();
        /// How often the list is fetched again from `refresh_url`.
        refresh_hours => pricing_refresh_hours: u32 = 24, range(1, 720);
    }
}

pub mod dashboard;
pub mod keys;
pub mod logs;
pub mod models;
pub mod overview;
pub mod prices;
pub mod providers;
pub mod settings;

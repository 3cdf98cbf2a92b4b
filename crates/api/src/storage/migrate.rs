//! Schema migrations, embedded in the binary and applied at start.
//!
//! Hand-rolled rather than `sqlx::migrate!` so the same embedded SQL runs through the `Any` driver on both
//! backends without the macro machinery; each migration runs in one transaction with its version row.

use sqlx::AnyPool;

/// Ordered migrations: (version, SQL of `;`-separated statements).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/0001_init.sql"))];

pub(super) async fn apply(pool: &AnyPool) -> Result<(), sqlx::Error> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)").execute(pool).await?;
    let (current,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetch_one(pool).await?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let mut tx = pool.begin().await?;
        for statement in statements(sql) {
            // Embedded migration text, never user input.
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)").bind(version).execute(&mut *tx).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Splits a migration into statements, dropping `--` comments (the schema has no `;` inside literals).
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String =
        sql.lines().map(|line| line.split("--").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
    without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

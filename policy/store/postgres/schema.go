package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the schema this version of easgate reads and writes.
// Migrations are numbered from 1; migration n brings a database from
// version n-1 to n. They are only ever appended to.
var SchemaVersion = len(migrations)

// migrations are the schema steps, applied in order in one transaction
// each, under an advisory lock so that two nodes starting together do not
// both apply them.
var migrations = []string{
	// 1: the records and their change versions. A deleted record keeps its
	// row with a NULL value (a tombstone) so that a node catching up sees
	// the delete; keys are bytea because device keys hold a NUL byte.
	`CREATE TABLE easgate_schema (version integer NOT NULL);
	 INSERT INTO easgate_schema VALUES (0);
	 CREATE SEQUENCE easgate_version;
	 CREATE TABLE easgate_records (
		bucket   text        NOT NULL,
		key      bytea       NOT NULL,
		value    bytea,
		version  bigint      NOT NULL,
		origin   text        NOT NULL,
		modified timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (bucket, key)
	 );`,
	// 2: the catch-up query reads by version; leases for the jobs one node
	// does at a time (the Graph pull).
	`CREATE INDEX easgate_records_version ON easgate_records (version);
	 CREATE TABLE easgate_leases (
		name    text        PRIMARY KEY,
		holder  text        NOT NULL,
		expires timestamptz NOT NULL
	 );`,
}

// migrateLock is the advisory lock key under which migrations run.
const migrateLock = 0x6561_7367_6d69 // "easgmi"

// ErrOldSchema says the database's schema is older than this easgate's and
// migrations were not asked for.
var ErrOldSchema = errors.New("the database schema is older than this easgate needs")

// schemaVersion reads the database's schema version (0: empty database).
func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('easgate_schema') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := q.QueryRow(ctx, `SELECT version FROM easgate_schema`).Scan(&v)
	return v, err
}

// Migrate brings the database at url up to SchemaVersion (or to version
// target when it is between 1 and SchemaVersion: tests use it to make an
// older schema). It returns the version found and the version left.
func Migrate(ctx context.Context, cfg Config, target int) (from, to int, err error) {
	pc, err := cfg.connConfig()
	if err != nil {
		return 0, 0, err
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return 0, 0, cfg.connError(err)
	}
	defer conn.Close(context.Background())
	return migrate(ctx, conn, target)
}

func migrate(ctx context.Context, conn *pgx.Conn, target int) (from, to int, err error) {
	if target <= 0 || target > SchemaVersion {
		target = SchemaVersion
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLock)); err != nil {
		return 0, 0, fmt.Errorf("state database: migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrateLock)) //nolint:errcheck
	from, err = schemaVersion(ctx, conn)
	if err != nil {
		return 0, 0, fmt.Errorf("state database: reading the schema version: %w", err)
	}
	if from > SchemaVersion {
		return from, from, fmt.Errorf("state database: schema version %d is newer than this easgate's (%d): upgrade easgate", from, SchemaVersion)
	}
	for v := from + 1; v <= target; v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE easgate_schema SET version = $1`, v)
			return err
		})
		if err != nil {
			return from, v - 1, fmt.Errorf("state database: migration %d: %w", v, err)
		}
	}
	return from, max(from, target), nil
}

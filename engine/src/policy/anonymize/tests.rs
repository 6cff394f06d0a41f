//! Planted canaries: real-looking personal data and secrets that must never reach the payload, while the
//! structure around them must.
use super::*;

const SCHEMA: &str = r#"
-- Customers of Erika Mustermann's branch
CREATE TABLE IF NOT EXISTS public.customers (
  id integer PRIMARY KEY,
  full_name text NOT NULL, /* e.g. Erika Mustermann */
  email character varying(255) UNIQUE,
  iban varchar(34),
  phone text,
  street text DEFAULT 'Musterstraße 1',
  api_token text,
  active boolean
);
CREATE TABLE invoices (
  id bigint,
  customer_id integer NOT NULL,
  amount numeric(10, 2),
  issued date,
  meta jsonb,
  PRIMARY KEY (id),
  CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES public.customers (id) ON DELETE CASCADE
);
"#;

const DATA: &str = r#"
INSERT INTO public.customers (id, full_name, email, iban, phone, street, api_token, active) VALUES
  (4711, 'Erika Mustermann', 'erika.mustermann@bank.de', 'DE89370400440532013000', '+49 30 1234567', 'Musterstraße 17, 50667 Köln', 'sk-live-4f9a8b7c6d5e4f3a', TRUE),
  (4712, 'Max O''Brien', 'max@example.org', 'DE89 3704 0044 0532 0130 00', '0301234567', NULL, NULL, false);
COPY invoices (id, customer_id, amount, issued, meta) FROM stdin;
9001	4711	1234.56	2024-03-15	{"payer": "Erika Mustermann", "card_token": "tok_visa_4242424242", "items": [{"sku": "A-100", "price": 1234.56}]}
9002	4712	-17.05	2024-03-16	\N
\.
"#;

const CANARIES: &[&str] = &[
    "Erika",
    "Mustermann",
    "erika.mustermann@bank.de",
    "max@example.org",
    "O'Brien",
    "Brien",
    "DE89370400440532013000",
    "DE89 3704",
    "1234.56",
    "17.05",
    "+49 30 1234567",
    "0301234567",
    "2024-03-15",
    "2024-03-16",
    "Musterstraße",
    "Köln",
    "50667",
    "sk-live-4f9a8b7c6d5e4f3a",
    "tok_visa",
    "4242424242",
    "4711",
    "4712",
    "9001",
    "A-100",
    "hunter2",
    "s3cr3t-Pa55",
    "10.20.30.40",
    "acme-prod",
];

fn payload(files: &[(&str, &str)]) -> AnonymizedPayload {
    anonymize(&SchemaSources::from_files(files.iter().map(|(p, t)| (p.to_string(), t.to_string()))))
}

fn assert_clean(p: &AnonymizedPayload) -> String {
    let text = p.preview();
    for c in CANARIES {
        assert!(!text.contains(c), "canary {c:?} leaked:\n{text}");
    }
    let json = serde_json::to_string(p).unwrap();
    for c in CANARIES {
        assert!(!json.contains(c), "canary {c:?} leaked into the serialized payload");
    }
    text
}

fn table<'a>(p: &'a AnonymizedPayload, name: &str) -> &'a Table {
    p.tables.iter().find(|t| t.name.ends_with(name)).unwrap_or_else(|| panic!("no table {name}: {:?}", p.tables))
}

fn cell(t: &Table, row: usize, col: &str) -> String {
    let s = &t.samples[0];
    let i = s.columns.iter().position(|c| c == col).unwrap_or_else(|| panic!("no column {col} in {:?}", s.columns));
    s.rows[row][i].clone()
}

#[test]
fn sql_structure_stays_and_values_go() {
    let p = payload(&[("db/schema.sql", SCHEMA), ("db/seed.sql", DATA)]);
    let text = assert_clean(&p);
    for s in [
        "CREATE TABLE public.customers (",
        "  id integer",
        "  full_name text NOT NULL",
        "  email character varying(255)",
        "  amount numeric(10,2)",
        "  issued date",
        "PRIMARY KEY (id)",
        "UNIQUE (email)",
        "FOREIGN KEY (customer_id) REFERENCES public.customers (id)",
        "INSERT INTO invoices (id, customer_id, amount, issued, meta) VALUES",
        "-- Sources: db/schema.sql, db/seed.sql",
    ] {
        assert!(text.contains(s), "{s:?} missing:\n{text}");
    }
    let c = table(&p, "customers");
    assert_eq!(cell(c, 0, "api_token"), "'<redacted>'");
    assert_eq!(cell(c, 1, "street"), "NULL");
    assert!(cell(c, 0, "email").starts_with("'user") && cell(c, 0, "email").ends_with("@example.invalid'"));
    assert!(cell(c, 0, "iban").starts_with("'XX") && cell(c, 0, "iban").len() == 24, "{}", cell(c, 0, "iban"));
    let inv = table(&p, "invoices");
    let amount = cell(inv, 0, "amount");
    assert!(regex::Regex::new(r"^[1-9]\d{3}\.\d{2}$").unwrap().is_match(&amount), "decimals keep scale: {amount}");
    assert!(cell(inv, 1, "amount").starts_with("'-") || cell(inv, 1, "amount").starts_with('-'));
    assert!(regex::Regex::new(r"^'\d{4}-\d{2}-\d{2}'$").unwrap().is_match(&cell(inv, 0, "issued")), "dates stay dates");
    // The JSON in a text column keeps its keys; its values are replaced, the token redacted.
    let meta = cell(inv, 0, "meta");
    assert!(
        meta.contains("\"payer\"") && meta.contains("\"card_token\": \"<redacted>\"") && meta.contains("\"sku\""),
        "{meta}"
    );
}

#[test]
fn the_same_value_maps_to_the_same_stand_in_across_tables_and_files() {
    let json = r#"{"customer_id": 4711, "owner": "Erika Mustermann"}"#;
    let p = payload(&[("db/schema.sql", SCHEMA), ("db/seed.sql", DATA), ("samples/order.json", json)]);
    assert_clean(&p);
    let (c, inv) = (table(&p, "customers"), table(&p, "invoices"));
    let id = cell(c, 0, "id");
    assert_eq!(cell(inv, 0, "customer_id"), id, "a join on the customer id still works");
    assert_eq!(cell(inv, 1, "customer_id"), cell(c, 1, "id"));
    assert_ne!(cell(c, 0, "id"), cell(c, 1, "id"));
    let doc = &p.documents.iter().find(|d| d.path == "samples/order.json").unwrap().text;
    assert!(doc.contains(&format!("\"customer_id\": {id}")), "{doc}");
    let name = cell(c, 0, "full_name");
    assert!(doc.contains(name.trim_matches('\'')), "the same name, the same stand-in: {name} / {doc}");
    assert!(cell(inv, 0, "meta").contains(name.trim_matches('\'')));
}

#[test]
fn the_preview_is_deterministic() {
    let files = [("db/schema.sql", SCHEMA), ("db/seed.sql", DATA)];
    assert_eq!(payload(&files).preview(), payload(&files).preview());
}

#[test]
fn migrations_replay_in_order() {
    let m1 = "CREATE TABLE accounts (id serial PRIMARY KEY, owner text, legacy_code text);\nCREATE TABLE tmp_import (x int);";
    let m2 = "ALTER TABLE accounts ADD COLUMN balance numeric(12,2) NOT NULL, DROP COLUMN legacy_code;\n\
              ALTER TABLE ONLY accounts RENAME COLUMN owner TO holder_name;\n\
              ALTER TABLE accounts ALTER COLUMN holder_name TYPE varchar(80);\n\
              ALTER TABLE accounts ADD CONSTRAINT fk_bank FOREIGN KEY (bank_id) REFERENCES banks (id);\n\
              DROP TABLE IF EXISTS tmp_import;";
    let p = payload(&[("migrations/001_init.sql", m1), ("migrations/002_balance.sql", m2)]);
    let text = p.preview();
    assert!(
        text.contains("  id serial NOT NULL")
            && text.contains("  holder_name varchar(80)")
            && text.contains("  balance numeric(12,2) NOT NULL"),
        "{text}"
    );
    assert!(!text.contains("legacy_code") && !text.contains("tmp_import") && !text.contains("  owner"), "{text}");
    assert!(text.contains("FOREIGN KEY (bank_id) REFERENCES banks (id)"), "{text}");
}

#[test]
fn mysql_dumps() {
    let dump = "CREATE TABLE `users` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `name` varchar(100) DEFAULT NULL,\n  `pass` varchar(64),\n  PRIMARY KEY (`id`),\n  KEY `idx_name` (`name`)\n) ENGINE=InnoDB;\n\
                INSERT INTO `users` VALUES (4711,'Erika O\\'Mustermann','hunter2'),(4712,'Max','s3cr3t-Pa55');";
    let p = payload(&[("dump.sql", dump)]);
    let text = assert_clean(&p);
    assert!(
        text.contains("  id int(11) NOT NULL") && text.contains("INSERT INTO users (id, name, pass) VALUES"),
        "{text}"
    );
    let u = table(&p, "users");
    assert_eq!(u.samples[0].rows.len(), 2);
    assert_eq!(u.samples[0].rows[0][2], "'<redacted>'", "a column named pass is a credential");
}

#[test]
fn csv_files_are_tables() {
    let csv = "id;payer;amount;booked;ip\n4711;Erika Mustermann;1234,56;2024-03-15;10.20.30.40\n4712;\"Mustermann, Erika\";17.05;2024-03-16;\n";
    let headerless = "Erika,Mustermann,erika.mustermann@bank.de\nMax,Mustermann,max@example.org\n";
    let p = payload(&[("exports/payments.csv", csv), ("exports/people.csv", headerless)]);
    let text = assert_clean(&p);
    assert!(
        text.contains(
            "CREATE TABLE payments (\n  id integer,\n  payer text,\n  amount text,\n  booked date,\n  ip text\n);"
        ),
        "{text}"
    );
    assert!(
        text.contains("CREATE TABLE people (\n  column1 text,\n  column2 text,\n  column3 text\n);"),
        "a first row of data is not a header:\n{text}"
    );
    assert_eq!(table(&p, "people").samples[0].rows.len(), 2);
}

#[test]
fn json_yaml_and_env_keep_keys_only() {
    let json = r#"[{"name": "Erika Mustermann", "contact": {"email": "erika.mustermann@bank.de", "phone": "+49 30 1234567"},
                   "erika.mustermann@bank.de": true, "iban": "DE89370400440532013000", "balance": 1234.56, "password": "hunter2",
                   "tags": ["Köln", "VIP"], "created": "2024-03-15T10:00:00Z"}, {"name": "x"}, {"name": "y"}, {"name": "z"}]"#;
    let yaml = "# owner: Erika Mustermann\nservice:\n  name: acme-prod\n  host: 10.20.30.40\n  db:\n    dsn: postgres://app:hunter2@10.20.30.40/acme\n    password: s3cr3t-Pa55\n\
                contacts:\n  - Erika Mustermann\n  - email: erika.mustermann@bank.de\n    note: |\n      Call Erika Mustermann\n      at +49 30 1234567\n";
    let env = "# prod\nexport DATABASE_URL=postgres://app:hunter2@db/acme\nAPI_TOKEN=\"sk-live-4f9a8b7c6d5e4f3a\"\nPEM=\"-----BEGIN\nMIIBOgIBAAJBAKj34GkxFhD\n-----END\"\nDEBUG=true\nnot a variable Erika\n";
    let p = payload(&[("fixtures/customers.json", json), ("deploy/values.yaml", yaml), (".env.production", env)]);
    let text = assert_clean(&p);
    for key in [
        "\"name\"",
        "\"contact\"",
        "\"email\"",
        "\"balance\"",
        "\"password\": \"<redacted>\"",
        "\"tags\"",
        "service:",
        "  db:",
        "    dsn: \"<redacted>\"",
        "contacts:",
        "  - email:",
        "DATABASE_URL=<redacted>",
        "API_TOKEN=<redacted>",
        "DEBUG=<redacted>",
    ] {
        assert!(text.contains(key), "{key:?} missing:\n{text}");
    }
    assert!(text.contains("\"key1\": "), "a key that is an e-mail address is replaced:\n{text}");
    assert!(
        !text.contains("MIIBOgIBAAJBAKj34GkxFhD") && !text.contains("-----END"),
        "multi-line .env values do not leak:\n{text}"
    );
    assert!(!text.contains("\"z\"") && !text.contains("\"y\""), "lists are cut to their first items");
    let env_doc = &p.documents.iter().find(|d| d.kind == SourceKind::Env).unwrap().text;
    assert_eq!(env_doc.lines().count(), 4, "{env_doc}");
    let yaml_doc = &p.documents.iter().find(|d| d.kind == SourceKind::Yaml).unwrap().text;
    assert!(yaml_rust2::YamlLoader::load_from_str(yaml_doc).is_ok(), "the YAML sample is still YAML:\n{yaml_doc}");
    let json_doc = &p.documents.iter().find(|d| d.kind == SourceKind::Json).unwrap().text;
    assert!(serde_json::from_str::<serde_json::Value>(json_doc).is_ok(), "the JSON sample is still JSON:\n{json_doc}");
}

#[test]
fn unparseable_files_are_left_out_whole() {
    let p = payload(&[
        ("broken.json", "{\"name\": \"Erika Mustermann\", "),
        ("broken.yaml", "a: [Erika Mustermann\nb: {"),
        ("ok.json", "{\"a\": 1}"),
    ]);
    let text = assert_clean(&p);
    assert_eq!(p.omitted.len(), 2, "{:?}", p.omitted);
    assert!(text.contains("-- left out: broken.json (does not parse as JSON)"), "{text}");
    assert_eq!(p.sources, vec!["ok.json".to_string()]);
}

#[test]
fn names_that_look_like_data_are_replaced() {
    let p = payload(&[("exports/erika.mustermann@bank.de.csv", "id\n1\n"), ("data/4711.json", "{\"a\": 1}")]);
    let text = assert_clean(&p);
    assert!(text.contains("exports/file1.csv") || text.contains("exports/file"), "{text}");
}

#[test]
fn a_workspace_end_to_end() {
    let root = std::env::temp_dir().join(format!("lokal-anon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("db")).unwrap();
    std::fs::create_dir_all(root.join("node_modules/pkg")).unwrap();
    std::fs::write(root.join("db/001_schema.sql"), SCHEMA).unwrap();
    std::fs::write(root.join("db/002_seed.sql"), DATA).unwrap();
    std::fs::write(root.join(".env"), "SECRET=hunter2\n").unwrap();
    std::fs::write(root.join("node_modules/pkg/fixture.json"), "{\"who\": \"Erika Mustermann\"}").unwrap();
    let p = anonymize_workspace(&root);
    let text = assert_clean(&p);
    assert!(text.contains("CREATE TABLE public.customers") && text.contains("SECRET=<redacted>"), "{text}");
    assert!(!text.contains("fixture"), "{text}");
}

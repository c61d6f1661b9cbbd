// swift-tools-version: 6.1
import PackageDescription

// Joule: energy and carbon accounting for Mixture-of-Experts LLM serving.
// Layers (see DESIGN.md): joule → Calibration/Catalog → Serving → MoE → Hardware → Accounting/Units.
// Pure modules (Units, Accounting, Hardware, MoE, Serving, Calibration) do no I/O; Catalog reads Data/ and traces;
// Ledger stores runs in SQLite (GRDB) or PostgreSQL (postgres-nio); Daemon runs scenarios into the ledger as services.
let package = Package(
    name: "Joule",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "joule", targets: ["joule"]),
        .executable(name: "ledger-bench", targets: ["ledger-bench"]),
        .executable(name: "joule-fuzz", targets: ["joule-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        // Hummingbird without its default traits: no swift-configuration, Foundation-essentials coding.
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
    ],
    targets: [
        .target(name: "Units"),
        .target(name: "Hardware", dependencies: ["Units"]),
        .target(name: "MoE", dependencies: ["Hardware", "Units", "Routing"]),
        .target(name: "Accounting", dependencies: ["Units"]),
        .target(name: "Serving", dependencies: ["MoE", "Hardware", "Accounting", "Units", "Routing"]),
        .target(name: "Calibration", dependencies: ["MoE", "Hardware", "Units"]),
        .target(name: "Scheduling", dependencies: ["Accounting", "CarbonData"]),
        .target(name: "Routing", dependencies: ["Units"]),
        .target(name: "CarbonData", dependencies: ["Accounting"]),
        .target(name: "CarbonLive", dependencies: ["CarbonData", "Accounting"]),
        .target(name: "TestHTTPServer"),
        // Measured mode: telemetry and request-log readers, and attribution of measured energy (no I/O).
        .target(name: "Measured", dependencies: ["Accounting", "CarbonData", "Serving"]),
        .target(
            name: "Catalog",
            dependencies: [
                "Hardware", "MoE", "Serving", "Accounting", "Calibration", "Units", "CarbonData", "Routing", "Measured",
                .product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Ledger",
            dependencies: [
                "Serving", "Accounting", "CarbonData", "Scheduling",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Reports",
            dependencies: [
                "Ledger", "Serving", "Accounting", "Routing", "Units",
                .product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Server",
            dependencies: [
                "Ledger", "Reports", "CarbonData", "Scheduling", "Serving", "Accounting", "Measured",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "Planning",
            dependencies: ["Catalog", "Calibration", "Serving", "MoE", "Routing", "Accounting", "Reports", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "Daemon",
            dependencies: [
                "Ledger", "Catalog", "Serving", "Accounting", "MoE", "CarbonData", "CarbonLive", "Measured",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "joule",
            dependencies: [
                "Catalog", "Calibration", "Serving", "Accounting", "MoE", "Hardware", "Units", "Ledger", "Daemon", "Scheduling", "CarbonData", "CarbonLive", "Reports", "Routing", "Server", "Planning", "Measured",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The parsers as fuzz targets, shared by `joule-fuzz` (libFuzzer, via Scripts/fuzz) and FuzzTests.
        .target(name: "FuzzTargets", dependencies: ["Catalog", "CarbonData", "Serving", "Accounting", "MoE", "Measured"]),
        .executableTarget(
            name: "joule-fuzz",
            dependencies: ["FuzzTargets", "Catalog"],
            // Entry point by @main (replay) or by libFuzzer's driver; lld links the latter where gold cannot.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])],
            linkerSettings: [.unsafeFlags(["-use-ld=lld"])]
        ),
        .executableTarget(
            name: "ledger-bench",
            dependencies: ["Ledger", "Catalog", "Serving", "MoE", "Units", .product(name: "GRDBSQLite", package: "GRDB.swift")]
        ),
        .testTarget(name: "UnitsTests", dependencies: ["Units"]),
        .testTarget(name: "HardwareTests", dependencies: ["Hardware", "Units"]),
        .testTarget(name: "MoETests", dependencies: ["MoE", "Hardware", "Units"]),
        .testTarget(name: "AccountingTests", dependencies: ["Accounting", "Units"]),
        .testTarget(name: "ServingTests", dependencies: ["Serving", "Catalog", "Accounting", "MoE", "Hardware", "Units", "Routing"]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog", "Serving", "Accounting", "MoE", "Hardware", "CarbonData"]),
        .testTarget(name: "CalibrationTests", dependencies: ["Calibration", "Catalog", "MoE", "Hardware"]),
        .testTarget(name: "SchedulingTests", dependencies: ["Scheduling", "Accounting", "Units"]),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "Units"]),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "Ledger", "Reports", "Catalog", "Serving", "MoE", "CarbonData", "Scheduling", "Measured",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ReportsTests",
            dependencies: ["Reports", "Ledger", "Catalog", "Serving", "MoE", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets", "Catalog", "Units"]),
        .testTarget(name: "PlanningTests", dependencies: ["Planning", "Catalog", "Serving", "MoE", "Routing", "Units", "Accounting"]),
        .testTarget(name: "MeasuredTests", dependencies: ["Measured", "Accounting", "Catalog", "Serving", "Units", "Calibration"]),
        .testTarget(name: "CarbonDataTests", dependencies: ["CarbonData", "Accounting", "Units"]),
        .testTarget(name: "CarbonLiveTests", dependencies: ["CarbonLive", "CarbonData", "Accounting", "TestHTTPServer"]),
        .testTarget(name: "LedgerTests", dependencies: ["Ledger", "Catalog", "Serving", "Accounting", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "DaemonTests",
            dependencies: [
                "Daemon", "Ledger", "Catalog", "Serving", "MoE", "CarbonData", "CarbonLive", "TestHTTPServer", "Measured",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

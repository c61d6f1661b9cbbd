// swift-tools-version: 6.0
import PackageDescription

// Joule: energy and carbon accounting for Mixture-of-Experts LLM serving.
// Layers (see DESIGN.md): joule → Calibration/Catalog → Serving → MoE → Hardware → Accounting/Units.
// Pure modules (Units, Accounting, Hardware, MoE, Serving, Calibration) do no I/O; Catalog reads Data/ and traces.
let package = Package(
    name: "Joule",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "joule", targets: ["joule"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        .target(name: "Units"),
        .target(name: "Hardware", dependencies: ["Units"]),
        .target(name: "MoE", dependencies: ["Hardware", "Units"]),
        .target(name: "Accounting", dependencies: ["Units"]),
        .target(name: "Serving", dependencies: ["MoE", "Hardware", "Accounting", "Units"]),
        .target(name: "Calibration", dependencies: ["MoE", "Hardware", "Units"]),
        .target(
            name: "Catalog",
            dependencies: ["Hardware", "MoE", "Serving", "Accounting", "Calibration", "Units", .product(name: "Yams", package: "Yams")]
        ),
        .executableTarget(
            name: "joule",
            dependencies: [
                "Catalog", "Calibration", "Serving", "Accounting", "MoE", "Hardware", "Units",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "UnitsTests", dependencies: ["Units"]),
        .testTarget(name: "HardwareTests", dependencies: ["Hardware", "Units"]),
        .testTarget(name: "MoETests", dependencies: ["MoE", "Hardware", "Units"]),
        .testTarget(name: "AccountingTests", dependencies: ["Accounting", "Units"]),
        .testTarget(name: "ServingTests", dependencies: ["Serving", "Catalog", "Accounting", "MoE", "Hardware", "Units"]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog", "Serving", "Accounting", "MoE", "Hardware"]),
        .testTarget(name: "CalibrationTests", dependencies: ["Calibration", "Catalog", "MoE", "Hardware"]),
    ],
    swiftLanguageModes: [.v6]
)

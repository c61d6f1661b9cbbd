import ArgumentParser
import Calibration
import Catalog
import Foundation
import Ledger
import Measured
import MoE
import Accounting
import Serving

/// The composition root: where the command line turns its options into loaded, validated specs.
enum Composition {
    /// Loads the spec library from the data directory the options name (or the default one).
    static func library(_ options: DataOptions) throws -> (SpecLibrary, String) {
        let directory = try Catalog.locateDataDirectory(
            explicit: options.dataDirectory, environment: ProcessInfo.processInfo.environment,
            executablePath: CommandLine.arguments.first.map(resolveExecutable) ?? ""
        )
        return (try Catalog.load(from: directory), directory)
    }

    private static func resolveExecutable(_ argument: String) -> String {
        if argument.contains("/") { return argument }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(argument)") {
            return "\(dir)/\(argument)"
        }
        return argument
    }
}

/// Turns a domain error into a message on standard error and a non-zero exit.
func failing<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CatalogError {
        throw CLIError(message: error.description)
    } catch let error as UnknownSpecError {
        throw CLIError(message: error.description)
    } catch let error as StepRequestError {
        throw CLIError(message: error.description)
    } catch let error as TraceError {
        throw CLIError(message: error.description)
    } catch let error as SimulationError {
        throw CLIError(message: error.description)
    } catch let error as LedgerError {
        throw CLIError(message: error.description)
    } catch let error as MeasuredInputError {
        throw CLIError(message: error.description)
    }
}

/// An error already phrased for the user.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension CLIError: LocalizedError {
    var errorDescription: String? { message }
}

/// Encodes `value` as stable, human-readable JSON (sorted keys).
func jsonText<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

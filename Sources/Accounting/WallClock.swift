import Foundation

/// Joule's one epoch-time vocabulary: times are seconds since 1970 (UTC) as `Double`, read from
/// and written as ISO 8601 here and nowhere else. Timestamps without a zone are read as UTC.
public enum WallClock {
    /// `t` as ISO 8601 in UTC to the second, `2025-02-27T04:00:00Z` (the format the CLI, the API
    /// and reports print). One reusable format style, not a formatter per call.
    public static func string(_ t: Double) -> String {
        Date(timeIntervalSince1970: t).formatted(secondsStyle)
    }

    /// `t` as ISO 8601 with milliseconds, `2025-02-27T04:00:00.250Z`.
    public static func fractionalString(_ t: Double) -> String {
        Date(timeIntervalSince1970: t).formatted(fractionalStyle)
    }

    private static let secondsStyle = Date.ISO8601FormatStyle(timeZone: TimeZone(secondsFromGMT: 0)!)
    private static let fractionalStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(secondsFromGMT: 0)!)

    /// Seconds since the epoch for `YYYY-MM-DD HH:MM:SS[.fraction]` (or with `T`), or nil.
    public static func epochSeconds<S: StringProtocol>(_ text: S) -> Double? {
        let chars = Array(text.utf8)
        guard chars.count >= 19, chars[4] == UInt8(ascii: "-"), chars[7] == UInt8(ascii: "-"),
              chars[10] == UInt8(ascii: " ") || chars[10] == UInt8(ascii: "T"),
              chars[13] == UInt8(ascii: ":"), chars[16] == UInt8(ascii: ":") else { return nil }
        func int(_ range: Range<Int>) -> Int? {
            var v = 0
            for i in range {
                let c = chars[i]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard let y = int(0..<4), let mo = int(5..<7), let d = int(8..<10), let h = int(11..<13),
              let mi = int(14..<16), let s = int(17..<19),
              (1...12).contains(mo), (1...daysIn(month: mo, year: y)).contains(d), h < 24, mi < 60, s < 61 else { return nil }
        var fraction = 0.0
        var rest = 19
        if rest < chars.count && chars[rest] == UInt8(ascii: ".") {
            var scale = 0.1
            rest += 1
            while rest < chars.count, chars[rest] >= 48 && chars[rest] <= 57 {
                fraction += Double(chars[rest] - 48) * scale
                scale /= 10
                rest += 1
            }
        }
        if rest < chars.count && chars[rest] == UInt8(ascii: "Z") { rest += 1 }
        guard rest == chars.count else { return nil }
        return Double(daysFromCivil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) + fraction
    }

    /// Days in `month` (1–12) of `year` in the proleptic Gregorian calendar: dates are checked,
    /// never normalised (February 30 is an error, not March 2).
    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
    public static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

extension WallClock {
    /// Seconds since the epoch for an ISO 8601 time with an optional zone: `2025-02-27T04:00:00Z`,
    /// `2025-02-27T12:00:00+08:00`, `2025-02-27 04:00` (no zone: UTC). Nil if it is not one.
    public static func iso8601<S: StringProtocol>(_ text: S) -> Double? {
        var s = String(text).trimmingCharacters(in: .whitespaces)
        var offset = 0.0
        if s.hasSuffix("Z") || s.hasSuffix("z") {
            s.removeLast()
        } else if s.count >= 22 {
            let tail = s.suffix(6)
            if let sign = tail.first, sign == "+" || sign == "-", let z = utcOffsetSeconds(String(tail)) {
                offset = z
                s.removeLast(6)
            }
        }
        if s.count == 16 { s += ":00" }
        if s.count == 10 { s += " 00:00:00" }
        return epochSeconds(s).map { $0 - offset }
    }

    /// Seconds east of UTC for `+HH:MM`, `-HH:MM` or `Z`.
    public static func utcOffsetSeconds(_ text: String) -> Double? {
        if text == "Z" || text == "UTC" { return 0 }
        let chars = Array(text)
        guard chars.count == 6, chars[0] == "+" || chars[0] == "-", chars[3] == ":",
              let h = Int(String(chars[1...2])), let m = Int(String(chars[4...5])), h <= 14, m < 60 else { return nil }
        return Double(chars[0] == "-" ? -1 : 1) * Double(h * 3600 + m * 60)
    }

    /// Seconds into the day for `HH:MM` or `HH:MM:SS` (00:00 to 23:59:59).
    public static func secondOfDay(_ text: String) -> Double? {
        let parts = text.split(separator: ":").map { Int($0) }
        guard (2...3).contains(parts.count), parts.allSatisfy({ $0 != nil }) else { return nil }
        let h = parts[0]!, m = parts[1]!, s = parts.count == 3 ? parts[2]! : 0
        guard (0..<24).contains(h), (0..<60).contains(m), (0..<60).contains(s) else { return nil }
        return Double(h * 3600 + m * 60 + s)
    }
}

// LoraEmotionRelay.h - the relay between an I2C/serial emotion model and LoRaWAN.
//
// Why it is built this way (docs/arduino.md has the full rules):
// * Rule 1, nothing slow in the interrupt: the I2C receive handler only copies the bytes of
//   one transaction into RxQueue. Parsing, aggregation, logging and the modem run from loop().
// * Rule 2, the radio is the scarce resource: readings (about 1 Hz) are aggregated into
//   windows; a window goes out when it is due and the airtime budget allows it, otherwise it
//   keeps growing, so no reading is lost to the budget. A change of dominant emotion is sent
//   at once when a reserved share of the budget allows it, at most once per window. A
//   status message reports health and acknowledges downlink commands.
// * Rule 3, the budget is enforced here, not hoped for: every uplink and join attempt is
//   charged to an AirtimeLedger (1 % in any hour, a daily cap over any 24 h) before it is
//   sent, and a pacer spreads the daily cap over the day.
// The modem, the I2C bus and the host serial port appear only in the run()/on_i2c_*()
// templates, which compile against MKRWAN's LoRaModem, Wire and Serial, or against fakes.
#ifndef LORA_EMOTION_RELAY_H
#define LORA_EMOTION_RELAY_H

#include <string.h>

#include "LoraEmotionCore.h"

namespace lora_emotion {

constexpr uint8_t kI2cAddress = 0x08;        // the 2021 demo's slave address
constexpr uint8_t kFrameSync = 0xA5;         // first byte of every frame (not a class 0..7)
constexpr uint8_t kMaxRelayClasses = 16;     // per-class sums are kept for this many classes
constexpr uint8_t kMaxFramePayload = 1 + 2 * kMaxRelayClasses;  // set + 16 x uint16 weight
constexpr uint8_t kFrameOverhead = 5;        // sync, type, length, CRC-16 (2)
constexpr uint8_t kMaxFrame = kMaxFramePayload + kFrameOverhead;
constexpr uint8_t kUnknownConfidence = 0xFF;  // frames: the model gave no confidence
constexpr uint8_t kFirmwareVersion[3] = {1, 0, 0};

// kLegacy never appears on the wire: the relay files a one-byte transaction under it.
enum class FrameType : uint8_t { kLegacy = 0, kReading = 1, kDistribution = 2, kFaces = 3, kVitals = 4 };

// What one step of frame reading produced (relay_protocol.DecodeError fields).
enum class FrameResult : uint8_t {
  kFrame = 0,
  kNeedMore,
  kSync,      // an I2C frame that does not start with the sync byte
  kLength,    // a length above kMaxFramePayload, or a transaction of the wrong size
  kChecksum,  // CRC mismatch
  kType,      // unknown frame type
  kPayload,   // a field outside its domain
};

// A decoded frame. Labels and confidences are the wire bytes: a class index, kNoFace,
// kNoReading (vitals), and kUnknownConfidence.
struct FrameFields {
  FrameType type;
  uint8_t label_set;
  uint8_t label;       // the first reading's (kNoReading: a vitals frame without one)
  uint8_t confidence;  // the first reading's (label and confidence are also faces[0])
  uint8_t count;       // weights of a distribution, else readings in `faces`
  int16_t heart_rate_bpm;             // -1 absent
  int16_t skin_conductance_centi_us;  // -1 absent
  // The readings of a reading, faces or vitals frame. An empty faces frame is one "no face"
  // reading (a face itself is never kNoFace), and so is a distribution's faces[0] until the
  // relay fills in its dominant class; a vitals frame without a reading has kNoReading there.
  // confidence_pct may be kUnknownConfidence. The relay reads the first reading from faces[0].
  // Before the weights: Thumb-1 byte loads reach 31 bytes past the frame, not 76.
  Face faces[kMaxRelayClasses];
  uint32_t weights[kMaxRelayClasses];  // 0..65535, wide for quantise_weights
};

FrameResult decode_frame_payload(uint8_t type, const uint8_t* payload, uint8_t length,
                                 FrameFields& out);
// Exactly one whole frame, as one I2C transaction carries it.
FrameResult decode_frame(const uint8_t* data, uint8_t length, FrameFields& out);

// The serial stream reader: relay_protocol.maybe_next_frame, one byte at a time.
class FrameReader {
 public:
  void reset() { length_ = 0; }
  // Appends a byte; call next() until it returns kNeedMore after every push.
  void push(uint8_t byte) {
    if (length_ == kMaxFrame) drop(1);  // unreachable when next() is drained after each push
    buffer_[length_++] = byte;
  }
  FrameResult next(FrameFields& out);

 private:
  void drop(uint8_t count);
  uint8_t length_;
  uint8_t buffer_[kMaxFrame];
};

// Single-producer (I2C interrupt) single-consumer (loop) queue of whole transactions, each
// stored as a length byte and its bytes. Indices run free modulo 256 (a multiple of kSize).
class RxQueue {
 public:
  static constexpr uint16_t kSize = 128;
  static constexpr uint8_t kOversize = 0xFF;  // length marker: the transaction was too long

  // A transaction travels as a record: its length (or kOversize, then no bytes) and its
  // bytes, stored and copied out in one piece.
  static constexpr uint8_t kMaxRecord = 1 + kMaxFrame;
  // Interrupt side. False (and one more overflow counted) when the record does not fit.
  bool push(const uint8_t* record);
  // Loop side: copies the oldest record into out (kMaxRecord bytes); false when empty.
  inline bool pop(uint8_t* out);
  uint16_t overflows() const { return overflows_; }
  uint8_t accepted() const { return accepted_; }

 private:
  volatile uint8_t accepted_;  // first: measured smallest
  volatile uint8_t head_;      // written only by the interrupt
  volatile uint8_t tail_;      // written only by loop()
  volatile uint16_t overflows_;
  volatile uint8_t buffer_[kSize];
};

// Runtime settings; downlink commands change them (docs/downlink.md).
struct Config {
  LabelSet label_set;
  uint32_t window_s;            // 1..65536
  uint16_t daily_budget_s;      // 1..1024
  uint16_t status_interval_min; // 1..65535
  Mode mode;
};

// Statistics of the open aggregation window. The relay's own: the members declared inline
// are defined in LoraEmotionRelay.cpp, the only place that uses them.
class Window {
 public:
  void reset(uint32_t start_s) {
    memset(static_cast<void*>(this), 0, sizeof(*this));
    start_s_ = start_s;
  }
  // label: class or kNoFace; confidence: 0..100 or kUnknownConfidence; percent: the
  // reading's quantised distribution, or nullptr (then it counts 100 % for its class).
  // False when the window already holds 65535 readings.
  inline bool add(uint8_t label, uint8_t confidence, const uint8_t* percent, uint8_t classes);
  inline void add_vitals(int16_t heart_rate_bpm, int16_t skin_conductance_centi_us);
  uint16_t readings() const { return total_; }
  uint32_t start_s() const { return start_s_; }
  bool has_content(Mode mode) const {
    return total_ != 0 || (mode == Mode::kVitals && (heart_n_ | skin_n_) != 0);
  }
  // Highest count, lowest index on ties; kNoFace when no class was counted.
  uint8_t dominant(uint8_t classes) const;
  // Mean confidence of a class rounded half up; 0 when none of its readings carried one.
  inline uint8_t mean_confidence(uint8_t label) const;
  inline Result build(const LabelSet& set, Mode mode, uint32_t now_s, Payload& out) const;

 private:
  // In the order that measured smallest (the window sits 148 bytes into the relay, so its
  // fields are reached from one base register).
  uint32_t start_s_;
  uint16_t counts_[kMaxRelayClasses];
  uint32_t heart_sum_;
  uint16_t total_;
  uint16_t no_face_;
  uint16_t share_n_;
  uint16_t heart_n_;
  uint16_t skin_n_;
  uint32_t skin_sum_;
  uint16_t confidence_n_[kMaxRelayClasses];
  uint32_t confidence_sum_[kMaxRelayClasses];
  uint32_t share_sum_[kMaxRelayClasses];
};

// Names the log formatter prints for the small codes in a LogRecord (LoraEmotionLog.cpp).
enum class Name : uint8_t {
  kNone = 0, kI2c, kSerial, kLegacy, kReading, kDistribution, kFaces, kSummary, kVitals,
  kBatch, kStatus, kChange, kWindow, kJoin, kSent, kRetry, kDiscarded, kRejoin, kApplied,
  kRejected, kUnknownCommand, kIgnored, kSync, kLength, kChecksum, kType, kPayload,
  kLegacyRange, kLabelRange, kSetMismatch, kWindowFull, kQueueOverflow, kUplinkRejected,
  kLabelSetChange, kEncode, kOfftime, kPacer, kBudget, kModem, kSetup,
  kCount
};

// The structured events of docs/relay-protocol.md, as numbers: the core fills values in the
// order of the event's keys and a LogSink turns them into a text line (format_log_line), or
// ignores them. Keeping the text out of the core keeps it small.
enum class LogEvent : uint8_t {
  kBoot = 0, kJoin, kReading, kDrop, kError, kDefer, kUplink, kDownlink, kConfig, kStats,
  kCount
};
constexpr uint32_t kOmit = 0xFFFFFFFF;  // a value that leaves its key out of the line
constexpr uint8_t kMaxLogValues = 14;

struct LogRecord {
  LogEvent event;
  uint8_t count;        // values filled in
  uint8_t size;         // bytes of `bytes` (uplink and downlink payloads)
  uint32_t now_ms;
  const uint8_t* bytes;
  uint32_t values[kMaxLogValues];
};

typedef void (*LogSink)(const LogRecord& record);

enum class UplinkKind : uint8_t { kNone = 0, kStatus, kChange, kWindow, kJoin };

namespace detail {
// MKRWAN 1.1.1+ reports the downlink's FPort; older versions do not have the method.
template <class M>
auto downlink_port(M& modem, int) -> decltype(static_cast<int>(modem.getDownlinkPort())) {
  return static_cast<int>(modem.getDownlinkPort());
}
template <class M>
int downlink_port(M&, long) {
  return -1;
}
}  // namespace detail

// True when the modem answers "AT" with "+OK" within timeout_ms, asking every 200 ms; the
// port is its UART (SerialLoRa), already begun. MKRWAN's LoRaModem::begin() calls itself again
// for as long as the modem is silent, so a sketch asks this first and calls begin() only
// after an answer: with a dead or unflashed modem setup() would otherwise never return.
template <class Port, class Clock, class Wait>
bool modem_answers(Port& port, Clock clock, Wait wait, uint32_t timeout_ms) {
  static const char kOk[] = "+OK";
  const uint32_t start = static_cast<uint32_t>(clock());
  uint32_t asked = start - 200;
  unsigned matched = 0;
  while (port.available() > 0) port.read();  // whatever the modem said before
  while (static_cast<uint32_t>(clock()) - start < timeout_ms) {
    if (static_cast<uint32_t>(clock()) - asked >= 200) {
      port.write("AT\r");
      asked = static_cast<uint32_t>(clock());
    }
    while (port.available() > 0) {
      const int c = port.read();
      matched = c == kOk[matched] ? matched + 1 : (c == '+' ? 1 : 0);
      if (matched == 3) return true;
    }
    wait(1);
  }
  return false;
}

class Relay {
 public:
  enum class Action : uint8_t { kNone = 0, kJoin, kSend };

  // Readings of the same class in a row that make a new dominant emotion.
  static constexpr uint8_t kChangeStreak = 3;
  // The pacer holds at most this many seconds of the daily allowance (3 h).
  static constexpr int32_t kPacerBurstS = 10800;
  // Consecutive failed uplinks after which the relay joins again.
  static constexpr uint8_t kRejoinAfterErrors = 6;
  // How long after a sent uplink the relay looks for its downlink (RX1 1 s, RX2 2 s, plus
  // the modem's reporting delay).
  static constexpr uint32_t kListenMs = 5000;
  // A failed modem start is tried again after this long (docs/arduino.md, "Start-up").
  static constexpr uint32_t kModemRetryS = 600;
  // The ledger's hour and day are this much longer than an hour and a day: a transmission
  // is charged when it is planned and starts on the air up to a few seconds later (the AT
  // commands before it each wait at most a second), so a rolling window measured on the
  // actual transmit times still holds at most the budget.
  static constexpr uint32_t kTransmitSlackMs = 60000;

  void begin(uint32_t now_ms, uint8_t label_set_id = 0, LogSink sink = nullptr);

  // ---- glue: call these from the sketch ----
  // Start-up: the relay takes readings from begin() on, but plans no join or uplink until
  // the sketch reports a started modem. True when the sketch should (re)try starting it:
  // at once after begin(), then kModemRetryS after each failure.
  bool modem_wanted(uint32_t now_ms) {
    tick(now_ms);
    return !modem_ready_ && uptime_s_ >= next_modem_s_;
  }
  // The outcome of a start attempt; a failure is logged as error code=modem src=setup.
  void modem_result(bool ok, uint32_t now_ms) {
    tick(now_ms);
    modem_ready_ = ok;
    if (!ok) {
      count_error(Name::kModem, Name::kSetup);
      next_modem_s_ = uptime_s_ + kModemRetryS;
    }
  }

  // Wire.onReceive handler body: copies the bytes of one transaction, nothing else.
  template <class TwoWire>
  void on_i2c_receive(TwoWire& wire, int count) {
    uint8_t record[RxQueue::kMaxRecord];
    int n = 0;
    for (; n < count && wire.available() > 0; ++n) {
      const int b = wire.read();
      if (n < kMaxFrame) record[1 + n] = static_cast<uint8_t>(b);
    }
    record[0] = n > kMaxFrame ? RxQueue::kOversize : static_cast<uint8_t>(n);
    if (n > 0) queue_.push(record);
  }

  // Wire.onRequest handler body: two bytes for the master, the count of transactions queued
  // (mod 256, so a master can tell its write arrived) and flags (bit 0 joined, bit 1 the
  // queue has overflowed since boot).
  template <class TwoWire>
  void on_i2c_request(TwoWire& wire) {
    const uint8_t reply[2] = {queue_.accepted(),
                              static_cast<uint8_t>((joined_ ? 1 : 0) | (queue_.overflows() ? 2 : 0))};
    wire.write(reply, 2);
  }

  // One pass of loop(): host serial bytes, queued I2C transactions, then at most one modem
  // operation (a join attempt or an uplink with its downlink). dev_eui: the DevEUI KPN
  // issued, or nullptr / "" to join with the modem's own.
  template <class Modem, class HostSerial, class Clock>
  void run(Modem& modem, HostSerial& host, Clock clock, const char* app_eui, const char* app_key,
           const char* dev_eui = nullptr) {
    while (host.available() > 0) serial_byte(static_cast<uint8_t>(host.read()), static_cast<uint32_t>(clock()));
    poll(static_cast<uint32_t>(clock()));
    Payload payload;
    switch (plan(static_cast<uint32_t>(clock()), payload)) {
      case Action::kJoin: {
        modem.setADR(true);  // KPN requires ADR
        const bool ok = (dev_eui != nullptr && dev_eui[0] != '\0'
                             ? modem.joinOTAA(app_eui, app_key, dev_eui)
                             : modem.joinOTAA(app_eui, app_key)) != 0;
        join_result(ok, ok ? modem.getDataRate() : -1, static_cast<uint32_t>(clock()));
        break;
      }
      case Action::kSend: {
        modem.setPort(payload.port);
        modem.beginPacket();
        modem.write(payload.bytes, payload.size);
        const int rc = modem.endPacket(false);
        uplink_result(rc, modem.getDataRate(), payload, static_cast<uint32_t>(clock()));
        break;
      }
      default:
        break;
    }
    // A class A downlink comes in the receive windows 1-2 s after the uplink; MKRWAN reports
    // it whenever its +RECV event has been read, so look for it while listening() says so.
    if (listening(static_cast<uint32_t>(clock()))) fetch_downlink(modem, clock);
  }

  // ---- the steps of run(), public so that tests can drive them without a modem ----
  void poll(uint32_t now_ms);
  void serial_byte(uint8_t byte, uint32_t now_ms);
  // Decides the next modem operation. For kSend the payload is filled and already charged
  // to the ledger and the pacer (a transmission that may have happened is never forgotten).
  Action plan(uint32_t now_ms, Payload& out);
  void join_result(bool ok, int data_rate, uint32_t now_ms);
  void uplink_result(int rc, int data_rate, const Payload& sent, uint32_t now_ms);
  // port -1 when the modem library cannot tell (then any port is taken as the command port).
  void downlink(int port, const uint8_t* data, uint8_t length, uint32_t now_ms);
  void log_stats(uint32_t now_ms) {
    tick(now_ms);
    note_stats();
  }
  // True for kListenMs after a sent uplink, until a downlink has been taken.
  bool listening(uint32_t now_ms) const { return listening_ && now_ms - listen_from_ms_ < kListenMs; }
  const Config& config() const { return config_; }
  bool joined() const { return joined_; }
  bool modem_ready() const { return modem_ready_; }
  uint32_t uptime_s() const { return uptime_s_; }
  uint32_t received() const { return received_; }
  uint32_t dropped() const { return dropped_; }
  uint32_t invalid() const { return invalid_; }
  uint32_t uplinks() const { return uplinks_; }
  uint16_t window_readings() const { return window_.readings(); }
  int32_t pacer_credit_s() const { return credit_s_; }
  AirtimeLedger& ledger() { return ledger_; }

 private:
  template <class Modem, class Clock>
  void fetch_downlink(Modem& modem, Clock clock) {
    if (modem.available() <= 0) return;
    uint8_t data[kMaxPayload];
    uint8_t n = 0;
    while (modem.available() > 0) {
      const int b = modem.read();
      if (b < 0) break;
      if (n < kMaxPayload) data[n++] = static_cast<uint8_t>(b);
    }
    listening_ = false;
    if (n > 0) downlink(detail::downlink_port(modem, 0), data, n, static_cast<uint32_t>(clock()));
  }

  // Every public step ticks first: the log stamps its records with the last tick's time.
  void tick(uint32_t now_ms);
  inline void handle_transaction(const uint8_t* bytes, unsigned length);
  void frame_result(FrameResult result, FrameFields& frame, Name source);
  inline void handle_frame(FrameFields& frame, Name source);
  inline void add_reading(uint8_t label, uint8_t confidence, const uint8_t* percent);
  void count_error(Name code, Name source);
  void count_drop(Name reason, uint32_t n);
  // Inline: uplink_result, which has ticked already, is the relay's one caller.
  void note_stats() const {
    note(LogEvent::kStats, received_, dropped_, invalid_, window_.readings(), uplinks_);
  }
  // One LogRecord for the sink: the values in the order of the event's keys.
  template <class... Values>
  void note(LogEvent event, Values... values) const {
    const uint32_t list[] = {static_cast<uint32_t>(values)...};
    emit(log_shape(event, sizeof...(values)), list);
  }
  // An event, its value count and payload size packed into one argument, so that a log call
  // passes everything in registers. Four bits each for the event and the count: without a
  // payload the shape fits one byte, which a single instruction loads.
  static constexpr uint32_t log_shape(LogEvent event, uint32_t count, uint32_t size = 0) {
    static_assert(static_cast<uint8_t>(LogEvent::kCount) <= 16 && kMaxLogValues < 16, "4-bit fields");
    return static_cast<uint32_t>(event) | count << 4 | size << 8;
  }
  void emit(uint32_t shape, const uint32_t* values, const uint8_t* bytes) const;
  // Without bytes: forwards a null pointer to the above, so that log calls need not pass one.
  void emit(uint32_t shape, const uint32_t* values) const;
  inline UplinkKind due();
  void restart_window();
  inline Result build(UplinkKind kind, Payload& out) const;
  uint32_t airtime_ms(uint8_t payload_size) const;
  uint32_t pacer_cost(uint32_t airtime) const;
  inline void defer(UplinkKind kind, Name reason, uint32_t wait_s);
  // A message has left (delivered), or will never leave: the state that waited for it moves
  // on. Returns the readings a delivered window carried.
  uint32_t finish(UplinkKind kind, bool delivered, Name drop_reason);
  inline void set_data_rate(int data_rate);

  // Small state first, by size: Thumb-1 loads reach 31 bytes (ldrb), 62 (ldrh) and 124 (ldr)
  // past a base register, and a field beyond its reach costs extra instructions at every use.
  Config config_;
  // bytes: change of dominant emotion, network and schedule, in the order that measured
  // smallest (the last two are past ldrb's reach)
  uint8_t streak_label_;
  uint8_t streak_length_;
  uint8_t streak_confidence_n_;
  bool window_had_change_;  // a change has gone out since the window started
  uint8_t reported_label_;
  bool change_pending_;
  uint8_t change_label_;
  uint8_t change_confidence_;
  uint8_t data_rate_;
  uint8_t join_attempts_;
  bool joined_;
  bool modem_ready_;
  uint8_t error_streak_;
  bool status_due_;
  bool listening_;
  UplinkKind sending_;
  uint8_t sent_data_rate_;
  uint8_t command_seq_;
  CommandStatus command_status_;
  // halfwords
  uint16_t deferred_;  // the last deferral's UplinkKind | Name << 8
  uint16_t carry_ms_;
  uint16_t overflows_seen_;
  uint16_t streak_confidence_sum_;
  uint16_t sent_airtime_ms_;
  // words: clock, counters (status "dropped" reports dropped + invalid, saturating), schedule
  LogSink sink_;
  uint32_t last_ms_;
  uint32_t uptime_s_;
  uint32_t last_plan_s_;
  uint32_t received_;
  uint32_t dropped_;
  uint32_t invalid_;
  uint32_t uplinks_;
  uint32_t first_join_failure_s_;
  uint32_t next_modem_s_;
  // The set a one-byte (legacy) master was built for: the one given to begin(). A downlink
  // that changes the set does not change what its bytes mean (docs/arduino.md).
  LabelSet legacy_set_;
  uint32_t next_join_s_;
  uint32_t retry_at_s_;
  uint32_t last_status_s_;
  uint32_t listen_from_ms_;
  uint32_t off_start_ms_;
  uint32_t off_length_ms_;
  int32_t credit_s_;  // may go negative: a message dearer than the whole bucket leaves a debt
  // the large parts last; the reader and the window first: a member within 255 bytes of the
  // start is one add away
  FrameReader reader_;
  Window window_;
  RxQueue queue_;
  AirtimeLedger ledger_;
};

}  // namespace lora_emotion

#endif  // LORA_EMOTION_RELAY_H

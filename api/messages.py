"""User-facing API messages in Bahasa Indonesia (default) and English.

The language is chosen per request: ``?lang=en`` or ``?lang=id`` first, then the first
supported language in ``Accept-Language``, else Indonesian.
"""

from fastapi import Request

DEFAULT_LANGUAGE = "id"
LANGUAGES = ("id", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "invalid_parameter": {
        "id": "Parameter '{name}' tidak valid: {problem}",
        "en": "Parameter '{name}' is invalid: {problem}",
    },
    "missing_parameter": {
        "id": "Parameter '{name}' wajib diisi.",
        "en": "Parameter '{name}' is required.",
    },
    "opd_not_found": {
        "id": "OPD '{opd}' tidak ditemukan. Lihat daftar OPD di /api/v1/opds.",
        "en": "OPD '{opd}' not found. See the list of OPDs at /api/v1/opds.",
    },
    "unknown_field": {
        "id": "Parameter 'field' tidak valid: '{field}' tidak ada pada stream '{stream}'. Pilihan: {choices}.",
        "en": "Parameter 'field' is invalid: '{field}' does not exist in stream '{stream}'. Choices: {choices}.",
    },
    "field_not_numeric": {
        "id": "Parameter 'agg' tidak valid: field '{field}' bukan angka, sehingga tidak dapat diagregasi dengan '{agg}'. Gunakan agg=count, first atau last.",
        "en": "Parameter 'agg' is invalid: field '{field}' is not numeric, so it cannot be aggregated with '{agg}'. Use agg=count, first or last.",
    },
    "range_order": {
        "id": "Parameter 'start' ({start}) harus lebih awal dari 'end' ({end}).",
        "en": "Parameter 'start' ({start}) must be earlier than 'end' ({end}).",
    },
    "too_many_buckets": {
        "id": "Parameter 'window' terlalu kecil: rentang waktu dengan window '{window}' menghasilkan {count} titik, maksimum {limit}. Perbesar window atau persempit rentang.",
        "en": "Parameter 'window' is too small: the time range with window '{window}' gives {count} buckets, at most {limit} are allowed. Use a larger window or a shorter range.",
    },
    "influx_unavailable": {
        "id": "Basis data time-series (InfluxDB) tidak dapat dihubungi. Coba lagi sebentar lagi.",
        "en": "The time-series database (InfluxDB) cannot be reached. Try again shortly.",
    },
    "dead_letter_not_found": {
        "id": "Dead letter {entry_id} tidak ditemukan.",
        "en": "Dead letter {entry_id} not found.",
    },
    "broker_unavailable": {
        "id": "Broker MQTT tidak dapat dihubungi. Coba lagi sebentar lagi.",
        "en": "The MQTT broker cannot be reached. Try again shortly.",
    },
    "invalid_window": {
        "id": "Parameter 'window' tidak valid: '{window}'. Pilihan: {choices}.",
        "en": "Parameter 'window' is invalid: '{window}'. Choices: {choices}.",
    },
    "invalid_time": {
        "id": "Parameter '{name}' tidak valid: '{value}' bukan tanggal atau waktu ISO 8601, misalnya 2026-12-04 atau 2026-12-04T08:00:00%2B07:00 (tulis '+' sebagai %2B di URL).",
        "en": "Parameter '{name}' is invalid: '{value}' is not an ISO 8601 date or time, e.g. 2026-12-04 or 2026-12-04T08:00:00%2B07:00 (write '+' as %2B in a URL).",
    },
    "time_out_of_range": {
        "id": "Parameter '{name}' tidak valid: '{value}' di luar tahun 2000 sampai 2100.",
        "en": "Parameter '{name}' is invalid: '{value}' is outside the years 2000 to 2100.",
    },
    "invalid_date": {
        "id": "Parameter 'date' tidak valid: '{value}' bukan tanggal dengan format YYYY-MM-DD.",
        "en": "Parameter 'date' is invalid: '{value}' is not a date in the form YYYY-MM-DD.",
    },
    "invalid_day": {
        "id": "Parameter '{name}' tidak valid: '{value}' bukan tanggal dengan format YYYY-MM-DD antara tahun 2000 dan 2100.",
        "en": "Parameter '{name}' is invalid: '{value}' is not a date in the form YYYY-MM-DD between the years 2000 and 2100.",
    },
    "day_range_order": {
        "id": "Parameter 'end' ({end}) tidak boleh lebih awal dari 'start' ({start}).",
        "en": "Parameter 'end' ({end}) must not be earlier than 'start' ({start}).",
    },
    "day_range_too_long": {
        "id": "Parameter 'end' tidak valid: rentang {start} sampai {end} berisi {days} hari, maksimum {limit}. Persempit rentang.",
        "en": "Parameter 'end' is invalid: the range {start} to {end} has {days} days, at most {limit} are allowed. Use a shorter range.",
    },
    "too_many_punches": {
        "id": "Rentang {start} sampai {end} berisi lebih dari {limit} absensi, terlalu banyak untuk satu rekap. Persempit rentang lewat parameter 'end'.",
        "en": "The range {start} to {end} has more than {limit} punches, too many for one recap. Use a shorter range through the parameter 'end'.",
    },
    "invalid_month": {
        "id": "Parameter 'month' tidak valid: '{value}' bukan bulan dengan format YYYY-MM antara tahun 2000 dan 2100, misalnya 2026-11.",
        "en": "Parameter 'month' is invalid: '{value}' is not a month in the form YYYY-MM between the years 2000 and 2100, e.g. 2026-11.",
    },
    "invalid_export_format": {
        "id": "Parameter 'format' tidak valid: '{value}'. Pilihan: {choices}.",
        "en": "Parameter 'format' is invalid: '{value}'. Choices: {choices}.",
    },
    "invalid_replay_request": {
        "id": "Permintaan tidak valid: isi 'ids' atau 'reason', salah satu saja.",
        "en": "Invalid request: give either 'ids' or 'reason', not both.",
    },
    "tariffs_invalid": {
        "id": "Tabel tarif listrik tidak dapat dibaca: {problem}. Perbaiki berkas tarif (SMARTOFFICE_TARIFFS_FILE).",
        "en": "The electricity tariff table cannot be read: {problem}. Fix the tariff file (SMARTOFFICE_TARIFFS_FILE).",
    },
    "day_in_future": {
        "id": "Parameter '{name}' tidak valid: tanggal {value} belum terjadi. Pilih hari ini atau tanggal sebelumnya.",
        "en": "Parameter '{name}' is invalid: {value} is in the future. Choose today or an earlier date.",
    },
    "alert_not_found": {
        "id": "Alert {alert_id} tidak ditemukan. Lihat daftar alert di /api/v1/alerts.",
        "en": "Alert {alert_id} not found. See the list of alerts at /api/v1/alerts.",
    },
    "node_not_found": {
        "id": "Node '{node}' tidak ada di OPD '{opd}'. Lihat daftar node di /api/v1/nodes.",
        "en": "Node '{node}' does not exist in OPD '{opd}'. See the list of nodes at /api/v1/nodes.",
    },
    "invalid_node_config": {
        "id": "Konfigurasi node tidak valid: {problem}. Konfigurasi yang berjalan tidak diubah.",
        "en": "Invalid node configuration: {problem}. The running configuration is unchanged.",
    },
    "monitor_disabled": {
        "id": "Pemantauan alert tidak berjalan di proses API ini (SMARTOFFICE_MONITOR_ENABLED=false).",
        "en": "The alert monitor does not run in this API process (SMARTOFFICE_MONITOR_ENABLED=false).",
    },
    "node_config_not_published": {
        "id": "Broker MQTT tidak dapat dihubungi, sehingga konfigurasi belum dikirim ke node. Coba lagi nanti.",
        "en": "The MQTT broker cannot be reached, so the configuration was not sent to the node. Try again later.",
    },
    "node_not_provisioned": {
        "id": "Node '{node}' di OPD '{opd}' belum pernah diberi kredensial broker, sehingga tidak ada yang dicabut.",
        "en": "Node '{node}' of OPD '{opd}' has never been given broker credentials, so there is nothing to revoke.",
    },
    "node_client_id_conflict": {
        "id": "Node '{node}' di OPD '{opd}' memakai client id MQTT yang sama dengan node lain: {problem}",
        "en": "Node '{node}' of OPD '{opd}' shares its MQTT client id with another node: {problem}",
    },
    "broker_admin_not_configured": {
        "id": "Pengelolaan kredensial broker tidak aktif: SMARTOFFICE_BROKER_ADMIN_PASSWORD belum diisi di API.",
        "en": "Broker credential management is off: SMARTOFFICE_BROKER_ADMIN_PASSWORD is not set in the API.",
    },
    "broker_admin_failed": {
        "id": "Perubahan identitas node di broker MQTT gagal, dan registri tidak diubah. Coba lagi nanti.",
        "en": "Changing the node's identity on the MQTT broker failed, and the registry was not changed. Try again later.",
    },
    "not_found": {
        "id": "Alamat '{path}' tidak ditemukan. Dokumentasi API ada di /docs.",
        "en": "Path '{path}' not found. The API documentation is at /docs.",
    },
    "not_authenticated": {
        "id": "Perlu login: kirim header 'Authorization: Bearer <token>'. Token akses didapat dari POST /api/v1/auth/token.",
        "en": "Login required: send the header 'Authorization: Bearer <token>'. Get an access token from POST /api/v1/auth/token.",
    },
    "invalid_token": {
        "id": "Token akses tidak valid: {reason}. Login lagi lewat POST /api/v1/auth/token.",
        "en": "The access token is invalid: {reason}. Log in again through POST /api/v1/auth/token.",
    },
    "token_expired": {
        "id": "Token akses kedaluwarsa pada {expired} (UTC). Login lagi lewat POST /api/v1/auth/token.",
        "en": "The access token expired at {expired} (UTC). Log in again through POST /api/v1/auth/token.",
    },
    "role_forbidden": {
        "id": "Akses ditolak: permintaan ini memerlukan peran {roles}, sedangkan peran Anda {role}.",
        "en": "Access denied: this request needs the role {roles}, and your role is {role}.",
    },
    "opd_forbidden": {
        "id": "Akses ditolak: akun Anda tidak berhak atas OPD '{opd}'. OPD yang boleh diakses: {allowed}.",
        "en": "Access denied: your account has no access to OPD '{opd}'. OPDs you may access: {allowed}.",
    },
    "no_opd_in_scope": {
        "id": "Akses ditolak: akun Anda (peran {role}) belum diberi OPD. Minta administrator menambahkan OPD.",
        "en": "Access denied: your account (role {role}) has no OPD assigned. Ask an administrator to add one.",
    },
    "personal_data_forbidden": {
        "id": "Akses ditolak: data kehadiran per pegawai adalah data pribadi dan hanya untuk peran admin atau facility_manager OPD ini. Peran {role} melihat jumlah saja, lewat /attendance/recap.",
        "en": "Access denied: attendance per employee is personal data, for the role admin or facility_manager of this OPD only. The role {role} sees counts only, through /attendance/recap.",
    },
    "login_failed": {
        "id": "Nama pengguna atau kata sandi salah.",
        "en": "Incorrect user name or password.",
    },
    "login_locked": {
        "id": "Terlalu banyak login gagal untuk nama pengguna ini. Coba lagi setelah {until} (UTC), {seconds} detik lagi.",
        "en": "Too many failed logins for this user name. Try again after {until} (UTC), in {seconds} s.",
    },
    "login_throttled": {
        "id": "Terlalu banyak login gagal dari alamat Anda. Coba lagi dalam {seconds} detik.",
        "en": "Too many failed logins from your address. Try again in {seconds} s.",
    },
    "account_disabled": {
        "id": "Akun '{username}' dinonaktifkan. Hubungi administrator.",
        "en": "The account '{username}' is disabled. Ask an administrator.",
    },
    "registry_unavailable": {
        "id": "Basis data registri tidak dapat dihubungi. Coba lagi sebentar lagi.",
        "en": "The registry database cannot be reached. Try again shortly.",
    },
    "api_token_not_found": {
        "id": "Token API {token_id} tidak ditemukan.",
        "en": "API token {token_id} not found.",
    },
    "token_lifetime_too_long": {
        "id": "Parameter 'expires_in_days' tidak valid: {days} hari melebihi batas {limit} hari.",
        "en": "Parameter 'expires_in_days' is invalid: {days} days is more than the limit of {limit} days.",
    },
    "pseudonym_key_missing": {
        "id": "Kunci pseudonim pegawai belum diatur di API (SMARTOFFICE_PSEUDONYM_KEY atau SMARTOFFICE_PSEUDONYM_KEY_FILE), sehingga daftar pegawai tidak dapat diimpor.",
        "en": "The API has no employee pseudonym key (SMARTOFFICE_PSEUDONYM_KEY or SMARTOFFICE_PSEUDONYM_KEY_FILE), so employee lists cannot be imported.",
    },
    "duplicate_employee": {
        "id": "Parameter 'employees' tidak valid: ID pegawai '{employee_id}' muncul lebih dari sekali.",
        "en": "Parameter 'employees' is invalid: employee id '{employee_id}' appears more than once.",
    },
    "pseudonym_collision": {
        "id": "ID pegawai '{first}' dan '{second}' menghasilkan pseudonim yang sama. Laporkan ke administrator platform.",
        "en": "Employee ids '{first}' and '{second}' give the same pseudonym. Report this to the platform administrator.",
    },
}

TOKEN_PROBLEMS: dict[str, dict[str, str]] = {
    "malformed": {"id": "formatnya bukan token yang sah", "en": "it is not a well-formed token"},
    "signature": {"id": "tanda tangannya tidak cocok", "en": "its signature does not match"},
    "algorithm": {"id": "ditandatangani dengan algoritme lain", "en": "it is signed with another algorithm"},
    "issuer": {"id": "diterbitkan oleh layanan lain", "en": "it was issued by another service"},
    "claims": {"id": "isinya tidak lengkap", "en": "its claims are incomplete"},
    "future": {"id": "waktu terbitnya di masa depan", "en": "it was issued in the future"},
    "user_gone": {"id": "penggunanya sudah dihapus atau dinonaktifkan", "en": "its user was deleted or disabled"},
    "unknown_role": {"id": "perannya tidak dikenal", "en": "its role is unknown"},
    "unknown_api_token": {"id": "token API ini tidak dikenal", "en": "this API token is unknown"},
    "revoked": {"id": "token API ini sudah dicabut", "en": "this API token was revoked"},
}
"""Reasons of ``invalid_token``, by language; a value of this form is rendered in the request's language."""


def request_language(request: Request) -> str:
    """Return the language of ``request``'s messages: ``id`` or ``en``."""
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        return chosen

    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def render(code: str, language: str, **values: object) -> str:
    """Return message ``code`` in ``language`` with ``values`` filled in."""
    templates = MESSAGES[code]
    localized = {
        name: _in_language(value, language) if _is_translation(value) else value for name, value in values.items()
    }
    return templates.get(language, templates[DEFAULT_LANGUAGE]).format(**localized)


def _is_translation(value: object) -> bool:
    return isinstance(value, dict) and DEFAULT_LANGUAGE in value


def _in_language(value: dict[str, str], language: str) -> str:
    return value.get(language, value[DEFAULT_LANGUAGE])

"""Vietnamese (the default) and English for the UI: one dict-based catalogue.

Message ids are the English text. Templates call `_("Sign in")` (with
`{name}` placeholders filled from keyword arguments); Python code marks the
ids it hands to templates with `N_()` so a test can check that every id has
a Vietnamese translation. `label(group, value)` names roles, access types,
endpoint kinds and audit actions; `reason(text)` translates the English
reasons the domain code gives for bad input ("must be a whole number").
"""

from __future__ import annotations

import re

__all__ = ["ACTION_LABELS", "COOKIE", "DEFAULT", "LANGUAGES", "N_", "VI", "gettext", "label", "reason", "resolve"]

LANGUAGES = ("vi", "en")
DEFAULT = "vi"
COOKIE = "vcs_lang"


def N_(msgid: str) -> str:
    """Marks an English message id for translation; translated where it is rendered."""
    return msgid


def resolve(raw: str | None) -> str:
    return raw if raw in LANGUAGES else DEFAULT


VI: dict[str, str] = {
    # layout
    "Online conferences": "Hội nghị trực tuyến",
    "Online conference system": "Hệ thống hội nghị trực tuyến",
    "Central level · 34 provinces and cities · 3,321 communes, wards and special zones": "Trung ương · 34 tỉnh, thành phố · 3.321 xã, phường, đặc khu",
    "Language": "Ngôn ngữ",
    "Main menu": "Danh mục chính",
    "Province": "Tỉnh",
    "Sign in": "Đăng nhập",
    "Sign out": "Đăng xuất",
    "Times are Vietnam time (UTC+7).": "Thời gian hiển thị theo giờ Việt Nam (UTC+7).",
    "Back to the home page": "Về trang chủ",
    # navigation
    "Today": "Hôm nay",
    "Meetings": "Cuộc họp",
    "Endpoints": "Điểm cầu",
    "Users": "Người dùng",
    "Audit log": "Nhật ký",
    # errors
    "Error": "Lỗi",
    "Bad request": "Yêu cầu không hợp lệ",
    "Access denied": "Không có quyền truy cập",
    "Not found": "Không tìm thấy",
    "Too large": "Dữ liệu quá lớn",
    "Invalid input": "Dữ liệu không hợp lệ",
    "Too many requests": "Quá nhiều yêu cầu",
    "You do not have permission to open this page.": "Bạn không có quyền truy cập trang này.",
    "The form has expired or did not come from this site. Reload the page and try again.": (
        "Biểu mẫu đã hết hạn hoặc không xuất phát từ trang này. Vui lòng tải lại trang và thử lại."
    ),
    "The upload is larger than {limit} bytes.": "Dữ liệu gửi lên lớn hơn {limit} byte.",
    "There is no such page or item.": "Không tìm thấy trang hoặc mục được yêu cầu.",
    "Too many requests. Try again in {seconds} seconds.": "Quá nhiều yêu cầu. Vui lòng thử lại sau {seconds} giây.",
    # sign-in
    "Username": "Tên đăng nhập",
    "Password": "Mật khẩu",
    "Enter your username and password.": "Hãy nhập tên đăng nhập và mật khẩu.",
    "Wrong username or password.": "Tên đăng nhập hoặc mật khẩu không đúng.",
    "Too many failed sign-in attempts. Try again in {minutes} min.": "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {minutes} phút.",
    "Accounts are created by an administrator. Contact your unit's IT staff if you cannot sign in.": (
        "Tài khoản do quản trị viên cấp. Liên hệ bộ phận công nghệ thông tin của đơn vị nếu không đăng nhập được."
    ),
    # today
    "Updated at {time}": "Cập nhật lúc {time}",
    "Refresh": "Làm mới",
    "Communes online": "Xã/phường trực tuyến",
    "Share online": "Tỷ lệ trực tuyến",
    "Province halls online": "Điểm cầu tỉnh trực tuyến",
    "Central studio": "Điểm cầu Trung ương",
    "Meetings today and upcoming": "Cuộc họp hôm nay và sắp tới",
    "Meeting": "Cuộc họp",
    "No meetings are scheduled.": "Chưa có cuộc họp nào được lên lịch.",
    "Meeting scheduling is coming soon.": "Chức năng lịch họp đang được hoàn thiện.",
    "Endpoints online by province": "Điểm cầu trực tuyến theo tỉnh, thành phố",
    "Code": "Mã",
    "Province/city": "Tỉnh/thành phố",
    "Communes": "Số xã/phường",
    "Online": "Trực tuyến",
    "Offline": "Ngoại tuyến",
    "Share": "Tỷ lệ",
    "Province hall": "Điểm cầu tỉnh",
    "Total": "Tổng cộng",
    "Time": "Thời gian",
    "Status": "Trạng thái",
    # endpoints
    "{total} endpoints match": "{total} điểm cầu phù hợp",
    "search": "tìm kiếm",
    "Export CSV": "Xuất CSV",
    "Import CSV": "Nhập CSV",
    "Name": "Tên",
    "e.g. hoan kiem": "ví dụ: hoan kiem",
    "All provinces": "Tất cả tỉnh, thành phố",
    "Kind": "Loại điểm cầu",
    "All": "Tất cả",
    "Access type": "Loại đường truyền",
    "Filter": "Lọc",
    "Clear": "Xóa bộ lọc",
    "Down / up (kbps)": "Tải xuống / tải lên (kbps)",
    "RTT (ms)": "Độ trễ RTT (ms)",
    "Loss (%)": "Mất gói (%)",
    "Last seen": "Hoạt động lần cuối",
    "{first}–{last} of {total}": "{first}–{last} trên tổng số {total}",
    "Previous": "Trang trước",
    "Next": "Trang sau",
    "Page {page} of {pages}": "Trang {page}/{pages}",
    "Pages": "Phân trang",
    "No endpoint matches these filters.": "Không có điểm cầu nào phù hợp với bộ lọc.",
    "Link profile": "Thông số đường truyền",
    "Downlink (kbps)": "Băng thông tải xuống (kbps)",
    "Uplink (kbps)": "Băng thông tải lên (kbps)",
    "Round-trip time (ms)": "Độ trễ khứ hồi (ms)",
    "Packet loss (%)": "Tỷ lệ mất gói (%)",
    "Save": "Lưu",
    "Cancel": "Hủy",
    "never": "chưa có",
    "Division": "Cấp hành chính",
    "Secret": "Mã bí mật",
    "issued": "đã cấp",
    "not issued": "chưa cấp",
    "Endpoint": "Điểm cầu",
    "Endpoint secret": "Mã bí mật của điểm cầu",
    "The agent in this room signs in with its secret. A new secret is shown once; the old one stops working at once.": (
        "Phần mềm tại phòng họp đăng nhập bằng mã bí mật này. Mã mới chỉ hiển thị một lần; mã cũ hết hiệu lực ngay lập tức."
    ),
    "I understand the room's agent must be given the new secret.": "Tôi hiểu rằng phải cập nhật mã mới cho phần mềm tại phòng họp.",
    "Tick the box to confirm.": "Hãy đánh dấu ô xác nhận.",
    "Rotate secret": "Cấp lại mã bí mật",
    "New secret": "Mã bí mật mới",
    "New secret for {name}": "Mã bí mật mới của {name}",
    "This secret is shown only once.": "Mã bí mật này chỉ hiển thị một lần.",
    "Copy it now and give it to the room's agent over a safe channel. The server keeps only a hash; the old secret no longer works.": (
        "Hãy sao chép ngay và chuyển cho phần mềm tại phòng họp qua kênh an toàn. Máy chủ chỉ lưu giá trị băm; mã cũ không còn hiệu lực."
    ),
    "Done": "Xong",
    "Link profile of {name} saved.": "Đã lưu thông số đường truyền của {name}.",
    "Nothing changed.": "Không có thay đổi nào.",
    # CSV import
    "Import link profiles from CSV": "Nhập thông số đường truyền từ tệp CSV",
    "Upload": "Tải tệp lên",
    "{count} error(s); nothing was imported.": "{count} lỗi; chưa có dữ liệu nào được nhập.",
    "Correct the file and upload it again.": "Hãy sửa tệp và tải lên lại.",
    "Line": "Dòng",
    "Problem": "Lỗi",
    "CSV file (UTF-8)": "Tệp CSV (UTF-8)",
    "Import": "Nhập",
    "File format": "Định dạng tệp",
    "One row per endpoint, with a header line:": "Mỗi điểm cầu một dòng, có dòng tiêu đề:",
    "name and province_code are ignored. access is one of gov_fiber, internet_fiber, 4g, satellite. Every row is checked first: one bad row and nothing changes.": (
        "Cột name và province_code không được dùng khi nhập. Cột access là một trong gov_fiber, internet_fiber, 4g, satellite. "
        "Mọi dòng được kiểm tra trước: chỉ cần một dòng sai thì không có gì thay đổi."
    ),
    "Download the current profiles as a starting point": "Tải về thông số hiện tại để chỉnh sửa",
    "Choose a CSV file.": "Hãy chọn một tệp CSV.",
    "The file is larger than {limit} bytes.": "Tệp lớn hơn {limit} byte.",
    "The file must be UTF-8 text (save it as CSV UTF-8).": "Tệp phải là văn bản UTF-8 (lưu dưới dạng CSV UTF-8).",
    "Imported {count} link profiles; nothing else changed.": "Đã nhập thông số đường truyền của {count} điểm cầu; dữ liệu khác không thay đổi.",
    # users
    "{count} accounts": "{count} tài khoản",
    "Full name": "Họ và tên",
    "Role": "Vai trò",
    "Sessions": "Phiên đăng nhập",
    "Created": "Ngày tạo",
    "Nationwide": "Toàn quốc",
    "Disabled": "Đã vô hiệu hóa",
    "Active": "Đang hoạt động",
    "Enable": "Kích hoạt",
    "Disable": "Vô hiệu hóa",
    "Add a user": "Thêm người dùng",
    "Add user": "Thêm người dùng",
    "Lowercase letters, digits, . _ -": "Chữ thường không dấu, chữ số, . _ -",
    "Only for organizers of one province": "Chỉ dành cho người tổ chức họp của một tỉnh, thành phố",
    "At least 10 characters": "Ít nhất 10 ký tự",
    "User {username} added.": "Đã thêm người dùng {username}.",
    "User {username} disabled; {count} session(s) ended.": "Đã vô hiệu hóa người dùng {username}; {count} phiên đăng nhập đã kết thúc.",
    "User {username} enabled.": "Đã kích hoạt người dùng {username}.",
    "You cannot disable your own account.": "Bạn không thể tự vô hiệu hóa tài khoản của mình.",
    # audit
    "The {limit} most recent entries, newest first.": "{limit} mục gần nhất, mới nhất ở trên cùng.",
    "Actor": "Người thực hiện",
    "Action": "Thao tác",
    "Target": "Đối tượng",
    "Details": "Chi tiết",
    "No entries.": "Chưa có mục nào.",
    # labels (see LABELS)
    "Administrator": "Quản trị viên",
    "Organizer": "Người tổ chức họp",
    "Operations": "Vận hành",
    "Viewer": "Người xem",
    "Government network (TSLCD)": "Mạng TSLCD",
    "Internet fibre": "Cáp quang Internet",
    "4G": "4G",
    "Satellite": "Vệ tinh",
    "Central": "Trung ương",
    "Commune/ward": "Xã/phường",
    "Upcoming": "Sắp diễn ra",
    "Live": "Đang diễn ra",
    "Signed in": "Đăng nhập",
    "Failed sign-in": "Đăng nhập không thành công",
    "Signed out": "Đăng xuất",
    "Link profile edited": "Sửa thông số đường truyền",
    "CSV import": "Nhập CSV",
    "Secret rotated": "Cấp lại mã bí mật",
    "User added": "Thêm người dùng",
    "User disabled": "Vô hiệu hóa người dùng",
    "User enabled": "Kích hoạt người dùng",
    "Meeting booked": "Đặt lịch họp",
    "Meeting changed": "Sửa lịch họp",
    "Meeting cancelled": "Hủy cuộc họp",
    "Floor given": "Trao quyền phát biểu",
}

# audit action => English label; actions not listed are shown by their name
ACTION_LABELS: dict[str, str] = {
    "auth.login": "Signed in",
    "auth.login_failed": "Failed sign-in",
    "auth.logout": "Signed out",
    "endpoint.link_edit": "Link profile edited",
    "endpoint.csv_import": "CSV import",
    "endpoint.secret_rotate": "Secret rotated",
    "user.add": "User added",
    "user.disable": "User disabled",
    "user.enable": "User enabled",
    # suggested for the meetings code
    "meeting.book": "Meeting booked",
    "meeting.change": "Meeting changed",
    "meeting.cancel": "Meeting cancelled",
    "meeting.floor": "Floor given",
}

LABELS: dict[str, dict[str, str]] = {
    "role": {"admin": "Administrator", "organizer": "Organizer", "ops": "Operations", "viewer": "Viewer"},
    "access": {"gov_fiber": "Government network (TSLCD)", "internet_fiber": "Internet fibre", "4g": "4G", "satellite": "Satellite"},
    "kind": {"central": "Central", "hall": "Province hall", "commune": "Commune/ward"},
    "meeting_status": {"upcoming": "Upcoming", "live": "Live"},
    "action": ACTION_LABELS,
}


def gettext(lang: str, msgid: str, **params: object) -> str:
    text = VI.get(msgid, msgid) if lang == "vi" else msgid
    return text.format(**params) if params else text


def label(lang: str, group: str, value: object) -> str:
    key = str(value.value if hasattr(value, "value") else value)
    msgid = LABELS.get(group, {}).get(key)
    return gettext(lang, msgid) if msgid else key


# English reasons from vcs (link_profiles, link_csv, users) and web.ui => Vietnamese; groups fill {0}, {1}
_VI_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (r"^line (\d+)$", "Dòng {0}"),
        (r"^must be one of (.+)$", "phải là một trong: {0}"),
        (r"^must be a number$", "phải là số"),
        (r"^must be a whole number$", "phải là số nguyên"),
        (r"^must be between (\S+) and (\S+)$", "phải nằm trong khoảng từ {0} đến {1}"),
        (r"^missing columns: (.+)$", "thiếu cột: {0}"),
        (r"^unknown endpoint id (.*)$", "không có điểm cầu mã {0}"),
        (r"^endpoint (\S+) appears twice$", "điểm cầu {0} xuất hiện hai lần"),
        (r"^no rows$", "tệp không có dòng dữ liệu nào"),
        (r"^2-64 characters: lowercase letters, digits, \. _ -$", "2–64 ký tự: chữ thường không dấu, chữ số, . _ -"),
        (r"^at least (\d+) characters$", "ít nhất {0} ký tự"),
        (r"^at most (\d+) characters$", "tối đa {0} ký tự"),
        (r"^already taken$", "tên này đã được sử dụng"),
        (r"^unknown province code (.*)$", "không có tỉnh, thành phố mã {0}"),
        (r"^only organizers are scoped to a province$", "chỉ người tổ chức họp mới gắn với một tỉnh, thành phố"),
    )
)
# "down_kbps must be a whole number": a CSV column, then a reason
_COLUMN_REASON = re.compile(r"^(access|down_kbps|up_kbps|rtt_ms|loss_pct) (.+)$")


def reason(lang: str, text: str) -> str:
    if lang != "vi":
        return text
    column = _COLUMN_REASON.match(text)
    if column:
        return f"{column.group(1)}: {reason(lang, column.group(2))}"
    for pattern, template in _VI_REASONS:
        found = pattern.match(text)
        if found:
            return template.format(*found.groups())
    return text

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
    # meetings: list, week, one meeting
    "Week": "Tuần",
    "List": "Danh sách",
    "View": "Cách xem",
    "Weeks": "Các tuần",
    "Book a meeting": "Đặt lịch họp",
    "Week of {first} to {last}": "Tuần từ {first} đến {last}",
    "From {first} to {last}": "Từ {first} đến {last}",
    "{count} occurrences": "{count} buổi họp",
    "Previous week": "Tuần trước",
    "This week": "Tuần này",
    "Next week": "Tuần sau",
    "Earlier": "Trước đó",
    "Later": "Sau đó",
    "Date": "Ngày",
    "Live view": "Theo dõi trực tiếp",
    "No meetings in these days.": "Không có cuộc họp nào trong những ngày này.",
    "{count} communes": "{count} xã, phường",
    "Monday": "Thứ Hai",
    "Tuesday": "Thứ Ba",
    "Wednesday": "Thứ Tư",
    "Thursday": "Thứ Năm",
    "Friday": "Thứ Sáu",
    "Saturday": "Thứ Bảy",
    "Sunday": "Chủ Nhật",
    "Once": "Một lần",
    "Custom rule: {rule}": "Quy tắc riêng: {rule}",
    "Every day": "Hằng ngày",
    "Every {n} days": "{n} ngày một lần",
    "Every week on {days}": "Hằng tuần vào {days}",
    "Every {n} weeks on {days}": "{n} tuần một lần vào {days}",
    "Every month on day {day}": "Hằng tháng vào ngày {day}",
    "Every {n} months on day {day}": "{n} tháng một lần vào ngày {day}",
    "{count} times": "{count} lần",
    "until {date}": "đến hết ngày {date}",
    "Cancelled": "Đã hủy",
    "Host console": "Bàn điều khiển chủ trì",
    "Edit": "Sửa",
    "Download .ics": "Tải tệp lịch (.ics)",
    "Cancel the meeting": "Hủy cuộc họp",
    "First occurrence": "Buổi đầu tiên",
    "Duration": "Thời lượng",
    "{minutes} minutes": "{minutes} phút",
    "Repeats": "Lặp lại",
    "Host": "Điểm cầu chủ trì",
    "Participants": "Thành phần tham dự",
    "All communes and wards of the country": "Tất cả xã, phường, đặc khu trong cả nước",
    "Every commune of: {names}": "Tất cả xã, phường của: {names}",
    "Group {name}": "Nhóm {name}",
    "Best quality": "Chất lượng tối đa",
    "Booked by": "Người đặt lịch",
    "Conflicts": "Trùng lịch",
    "Booked over conflicts by an administrator": "Quản trị viên đã đặt lịch dù trùng lịch",
    "Occurrences": "Các buổi họp",
    "Cancel this one": "Hủy buổi này",
    "and {count} more": "và {count} mục khác",
    "No occurrence is left.": "Không còn buổi họp nào.",
    # meetings: cancelling
    "Cancel one occurrence": "Hủy một buổi họp",
    "The occurrence of {time} of “{title}” will be cancelled.": "Buổi họp lúc {time} của “{title}” sẽ bị hủy.",
    "The other occurrences stay as they are. Every room taking part is told at once.": (
        "Các buổi khác giữ nguyên. Mọi điểm cầu tham dự được thông báo ngay."
    ),
    "Every remaining occurrence of “{title}” will be cancelled ({count}).": "Tất cả các buổi còn lại của “{title}” sẽ bị hủy ({count} buổi).",
    "Occurrences already held keep their record. Every room taking part is told at once.": (
        "Các buổi đã diễn ra vẫn được lưu lại. Mọi điểm cầu tham dự được thông báo ngay."
    ),
    "“{title}” will be cancelled.": "Cuộc họp “{title}” sẽ bị hủy.",
    "Every room taking part is told at once.": "Mọi điểm cầu tham dự được thông báo ngay.",
    "Yes, cancel this occurrence": "Đồng ý hủy buổi này",
    "Yes, cancel the meeting": "Đồng ý hủy cuộc họp",
    "No, keep it": "Không, giữ lại",
    "The meeting of {time} is cancelled.": "Đã hủy buổi họp lúc {time}.",
    "Meeting {title} is cancelled.": "Đã hủy cuộc họp {title}.",
    "Nothing was cancelled: {reason}": "Chưa hủy được: {reason}",
    # meetings: the booking form
    "Edit meeting": "Sửa cuộc họp",
    "Times are Vietnam time. Preview shows conflicts and the bandwidth plan before anything is saved.": (
        "Thời gian theo giờ Việt Nam. Nút Xem trước cho biết trùng lịch và kế hoạch băng thông trước khi lưu."
    ),
    "Please correct the fields marked below.": "Vui lòng sửa các mục được đánh dấu bên dưới.",
    "Preview": "Xem trước",
    "Title": "Tên cuộc họp",
    "Start time": "Giờ bắt đầu",
    "Duration (minutes)": "Thời lượng (phút)",
    "Where the meeting is chaired from": "Nơi chủ trì cuộc họp",
    "Communes with weaker links get less, down to audio only": "Điểm cầu có đường truyền yếu nhận chất lượng thấp hơn, có thể chỉ nhận âm thanh",
    "Who takes part": "Thành phần tham dự",
    "Every commune and ward ({count})": "Tất cả xã, phường, đặc khu ({count})",
    "Whole provinces": "Theo tỉnh, thành phố",
    "Single communes": "Chọn từng xã, phường",
    "Provinces and cities": "Tỉnh, thành phố",
    "Communes and wards": "Xã, phường, đặc khu",
    "Selected: untick to remove.": "Đã chọn (bỏ đánh dấu để loại ra):",
    "Find by name": "Tìm theo tên",
    "Accents are optional: “hoan kiem” finds Hoàn Kiếm.": "Có thể gõ không dấu: “hoan kiem” tìm được Hoàn Kiếm.",
    "Search": "Tìm",
    "{count} found; tick to add:": "Tìm thấy {count}; đánh dấu để thêm:",
    "Only the first {count} are shown; type more of the name.": "Chỉ hiện {count} kết quả đầu; hãy gõ thêm tên.",
    "No commune or ward matches “{q}”.": "Không có xã, phường nào khớp với “{q}”.",
    "Repeat": "Lặp lại",
    "Does not repeat": "Không lặp lại",
    "Daily": "Hằng ngày",
    "Weekly": "Hằng tuần",
    "Monthly": "Hằng tháng",
    "Every how many days, weeks or months": "Bao nhiêu ngày, tuần hoặc tháng một lần",
    "Ends after (occurrences)": "Kết thúc sau (số buổi)",
    "Number of occurrences": "Số buổi họp",
    "Ends on (date)": "Kết thúc vào ngày",
    "Last day": "Ngày cuối",
    "On (weekly)": "Vào các thứ (hằng tuần)",
    "None ticked: the weekday of the first occurrence.": "Không chọn: lấy thứ của buổi đầu tiên.",
    "Save changes": "Lưu thay đổi",
    "Book": "Đặt lịch",
    "Not saved: the booking conflicts with other meetings or exceeds the SFU capacity. Change it, or ask an administrator.": (
        "Chưa lưu: lịch họp trùng với cuộc họp khác hoặc vượt quá năng lực máy chủ truyền hình (SFU). Hãy điều chỉnh, hoặc nhờ quản trị viên."
    ),
    "Not saved: the booking conflicts with other meetings or exceeds the SFU capacity. Change it, or tick the box to book anyway.": (
        "Chưa lưu: lịch họp trùng với cuộc họp khác hoặc vượt quá năng lực máy chủ truyền hình (SFU). Hãy điều chỉnh, hoặc đánh dấu ô để vẫn đặt lịch."
    ),
    "Not saved: another booking took some of these rooms a moment ago. Check the conflicts below.": (
        "Chưa lưu: vừa có lịch họp khác sử dụng một số điểm cầu này. Hãy xem danh sách trùng lịch bên dưới."
    ),
    "Meeting {title} booked for {count} communes.": "Đã đặt lịch cuộc họp {title} cho {count} xã, phường.",
    "Meeting {title} saved.": "Đã lưu cuộc họp {title}.",
    # meetings: the preview and the bandwidth plan
    "Bandwidth plan": "Kế hoạch băng thông",
    "Communes taking part": "Xã, phường tham dự",
    "Shortfalls": "Thiếu hụt",
    "Mbps over all province trunks ({direct} without the cascade)": "Mbps trên các đường trục tỉnh ({direct} nếu không phân tầng)",
    "{count} endpoint booking(s) overlap with other meetings.": "{count} lượt điểm cầu bị trùng với cuộc họp khác.",
    "The SFU nodes lack room for {count} subscriber(s).": "Máy chủ truyền hình (SFU) thiếu chỗ cho {count} điểm cầu.",
    "Already booked in": "Đã có lịch họp",
    "Endpoints booked twice": "Điểm cầu bị trùng",
    "and {count} more occurrences": "và {count} buổi họp khác",
    "Your occurrence": "Buổi họp đang đặt",
    "Book anyway (administrator): the override is kept on the meeting": "Vẫn đặt lịch (quản trị viên): việc bỏ qua trùng lịch được ghi lại",
    "Change the time or the participants, or ask an administrator to book over the conflicts.": (
        "Hãy đổi thời gian hoặc thành phần tham dự, hoặc nhờ quản trị viên đặt lịch bỏ qua trùng lịch."
    ),
    "No conflicts with other meetings.": "Không trùng với cuộc họp nào.",
    "The network can carry it.": "Hạ tầng mạng đáp ứng được.",
    "Quality each commune starts on": "Chất lượng ban đầu của các xã, phường",
    "Quality": "Chất lượng",
    "Best quality asked: {tier}. The media server adapts each commune live; this is the starting point.": (
        "Chất lượng tối đa: {tier}. Máy chủ truyền hình điều chỉnh theo từng điểm cầu trong khi họp; đây là mức ban đầu."
    ),
    "needs {need} {unit}, has {have}": "cần {need} {unit}, hiện có {have}",
    "None: every link, trunk and SFU node has room.": "Không có: mọi đường truyền, đường trục và máy chủ SFU đều đủ.",
    "SFU nodes": "Máy chủ SFU",
    "Node": "Máy chủ",
    "In use": "Đang dùng",
    "This meeting": "Cuộc họp này",
    "Capacity": "Năng lực",
    "Province trunks": "Đường trục các tỉnh, thành phố",
    "Qualities sent": "Các mức chất lượng truyền",
    "Load (kbps)": "Tải (kbps)",
    "Without cascade (kbps)": "Nếu không phân tầng (kbps)",
    "Capacity (kbps)": "Dung lượng (kbps)",
    "Over capacity": "Quá tải",
    # meetings: the live view
    "Expected": "Dự kiến",
    "Joined": "Đã vào phòng họp",
    "Failed": "Lỗi",
    "Communes joined by province": "Xã, phường đã vào phòng họp theo tỉnh, thành phố",
    "Provinces, north to south": "Các tỉnh, thành phố từ Bắc vào Nam",
    "not in this meeting": "không tham dự",
    "The floor": "Quyền phát biểu",
    "Speaking now:": "Đang phát biểu:",
    "the host": "điểm cầu chủ trì",
    "Take the floor back": "Lấy lại quyền phát biểu",
    "Give the floor to": "Trao quyền phát biểu cho",
    "Give the floor": "Trao quyền phát biểu",
    "Find a participant": "Tìm điểm cầu tham dự",
    "No participant matches “{q}”.": "Không có điểm cầu tham dự nào khớp với “{q}”.",
    "Quality received": "Chất lượng đang nhận",
    "Worst links": "Đường truyền kém nhất",
    "No link reports yet.": "Chưa có báo cáo đường truyền.",
    "This meeting has no current or upcoming occurrence.": "Cuộc họp này không có buổi nào đang hoặc sắp diễn ra.",
    "Live updates on": "Đang cập nhật trực tiếp",
    "Live updates lost; retrying…": "Mất kết nối cập nhật; đang thử lại…",
    "Without JavaScript this page shows the state when it was loaded: use Refresh.": (
        "Khi không bật JavaScript, trang hiển thị trạng thái lúc tải trang: hãy bấm Làm mới."
    ),
    "The floor was not handed over: the meeting's media server (SFU) did not take it. The room may not be open yet, the commune may not be in it, or the server cannot be reached. ({detail})": (
        "Chưa trao được quyền phát biểu: máy chủ truyền hình (SFU) của cuộc họp chưa nhận lệnh. Có thể phòng họp chưa mở, "
        "điểm cầu chưa vào phòng, hoặc không kết nối được máy chủ. ({detail})"
    ),
    "Choose a commune taking part in this meeting.": "Hãy chọn một xã, phường tham dự cuộc họp này.",
    "The floor is back with the host.": "Quyền phát biểu đã trở về điểm cầu chủ trì.",
    "{name} has the floor.": "Đã trao quyền phát biểu cho {name}.",
    # meetings: the host console
    "Broadcast as {host} from this browser's camera and microphone.": "Phát hình với tư cách {host} từ camera và micro của trình duyệt này.",
    "Allow the camera and microphone when the browser asks.": "Hãy cho phép dùng camera và micro khi trình duyệt hỏi.",
    "Camera and microphone ready. Nothing is sent until you start.": "Camera và micro đã sẵn sàng. Chưa phát đi cho đến khi bạn bấm bắt đầu.",
    "This browser cannot send video here: it needs a recent browser and an HTTPS address.": (
        "Trình duyệt này không phát hình được: cần trình duyệt mới và địa chỉ HTTPS."
    ),
    "The camera or microphone could not be opened ({error}). Check the browser permission and that no other program uses them.": (
        "Không mở được camera hoặc micro ({error}). Hãy kiểm tra quyền của trình duyệt và bảo đảm không có chương trình khác đang dùng."
    ),
    "Connecting to the media server…": "Đang kết nối máy chủ truyền hình…",
    "On air: the meeting receives this camera.": "Đang phát: cuộc họp đang nhận hình từ camera này.",
    "Preview of what the communes receive": "Hình các xã, phường đang nhận",
    "Stopped. Nothing is sent.": "Đã dừng. Không còn phát đi.",
    "Could not start the broadcast: {error}": "Không bắt đầu phát được: {error}",
    "the media server answered {status}": "máy chủ truyền hình trả lời {status}",
    "the media server cannot be reached": "không kết nối được máy chủ truyền hình",
    "The host console needs JavaScript to use the camera.": "Bàn điều khiển chủ trì cần JavaScript để dùng camera.",
    "Your camera": "Camera của bạn",
    "Camera": "Camera",
    "Microphone": "Micro",
    "Start broadcasting": "Bắt đầu phát",
    "Stop": "Dừng",
    "Broadcasting opens {minutes} minutes before the start ({time}).": "Có thể bắt đầu phát từ {minutes} phút trước giờ họp ({time}).",
    "Broadcasting opens {minutes} minutes before the start.": "Chỉ có thể bắt đầu phát từ {minutes} phút trước giờ họp.",
    "What the communes receive": "Hình các xã, phường nhận được",
    "Connection": "Kết nối",
    "Sending": "Đang gửi",
    "Room": "Phòng họp",
    "The media server encodes one stream per quality in use; each commune gets the one its link carries.": (
        "Máy chủ truyền hình mã hóa một luồng cho mỗi mức chất lượng đang dùng; mỗi xã, phường nhận mức phù hợp với đường truyền của mình."
    ),
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
    "Scheduled": "Đã lên lịch",
    "Preparing": "Đang chuẩn bị",
    "Ended": "Đã kết thúc",
    "720p (HD)": "720p (HD)",
    "360p": "360p",
    "180p": "180p",
    "Audio only": "Chỉ âm thanh",
    "Cannot receive": "Không nhận được",
    "Not reported": "Chưa báo cáo",
    "Commune link": "Đường truyền xã, phường",
    "Province trunk": "Đường trục tỉnh",
    "SFU node": "Máy chủ SFU",
    "Host broadcast started": "Bắt đầu phát từ bàn điều khiển chủ trì",
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
    "meeting.host": "Host broadcast started",
}

LABELS: dict[str, dict[str, str]] = {
    "role": {"admin": "Administrator", "organizer": "Organizer", "ops": "Operations", "viewer": "Viewer"},
    "access": {"gov_fiber": "Government network (TSLCD)", "internet_fiber": "Internet fibre", "4g": "4G", "satellite": "Satellite"},
    "kind": {"central": "Central", "hall": "Province hall", "commune": "Commune/ward"},
    "meeting_status": {
        "upcoming": "Upcoming",
        "live": "Live",
        "scheduled": "Scheduled",
        "preparing": "Preparing",
        "ended": "Ended",
        "cancelled": "Cancelled",
        "failed": "Failed",
    },
    "tier": {"720p": "720p (HD)", "360p": "360p", "180p": "180p", "audio": "Audio only", "none": "Cannot receive", "unknown": "Not reported"},
    "shortfall": {"link": "Commune link", "trunk": "Province trunk", "node": "SFU node"},
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
        # meetings (scheduler.meeting, scheduler.recurrence, web.ui.booking_form)
        (r"^enter the date as dd/mm/yyyy$", "hãy nhập ngày theo dạng dd/mm/yyyy"),
        (r"^enter the time as HH:MM$", "hãy nhập giờ theo dạng HH:MM"),
        (r"^is required$", "không được để trống"),
        (r"^must not be empty$", "không được để trống"),
        (r"^must be at most (\d+) characters \(has (\d+)\)$", "tối đa {0} ký tự (hiện có {1})"),
        (r"^must be a single line without control characters$", "phải nằm trên một dòng, không có ký tự điều khiển"),
        (r"^must be in the future$", "phải là thời điểm trong tương lai"),
        (r"^must be within 5 years from now$", "phải trong vòng 5 năm tới"),
        (r"^must be between 5 minutes and 12 hours$", "phải từ 5 phút đến 12 giờ"),
        (r"^must be a whole number of minutes$", "phải là số phút nguyên"),
        (r"^the start date is not one the rule selects$", "ngày bắt đầu không thuộc lịch lặp đã chọn (hãy chọn đúng thứ trong tuần)"),
        (r"^UNTIL is before the start$", "ngày kết thúc ở trước ngày bắt đầu"),
        (r"^COUNT must be between 1 and (\d+), got (\d+)$", "số buổi phải từ 1 đến {0} (đang là {1})"),
        (r"^INTERVAL must be between 1 and (\d+), got (\d+)$", "khoảng lặp phải từ 1 đến {0} (đang là {1})"),
        (r"^every occurrence is cancelled$", "mọi buổi họp đều đã bị hủy"),
        (r"^must list at least one province$", "hãy chọn ít nhất một tỉnh, thành phố"),
        (r"^must list at least one commune$", "hãy chọn ít nhất một xã, phường"),
        (r"^unknown province code\(s\): (.+)$", "không có tỉnh, thành phố mã {0}"),
        (r"^unknown commune code\(s\): (.+)$", "không có xã, phường mã {0}"),
        (r"^lists a (?:province|commune) twice$", "có mục bị chọn hai lần"),
        (r"^names no commune$", "không có xã, phường nào"),
        (r"^unknown endpoint (.+)$", "không có điểm cầu {0}"),
        (r"^a series under way keeps its start; cancel it and book anew$", (
            "chuỗi cuộc họp đã bắt đầu thì giữ nguyên giờ bắt đầu và lịch lặp; hãy hủy và đặt lịch mới"
        )),
        (r"^has already ended$", "đã kết thúc"),
        (r"^is not an occurrence of this meeting$", "không phải một buổi của cuộc họp này"),
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

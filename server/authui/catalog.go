package authui

import "golang.org/x/text/feature/plural"

// messages are one language's UI strings. A placeholder in braces ({client},
// {user}, {n}) marks where a value goes: the templates split a message
// around it and let html/template escape the value, so a translation is
// always text, never HTML. Every language has every key, with the same
// placeholders (catalog_test.go).
type messages struct {
	text    map[string]string
	plurals map[string]forms
}

// forms are a plural message's variants by CLDR plural form. A language has
// exactly the forms its integers use (catalog_test.go checks them against
// golang.org/x/text/feature/plural), and always Other.
type forms map[plural.Form]string

// catalog returns the strings of every locale. It is the one place to
// translate: add a key here in all five languages, or the tests fail.
// French typography: a no-break space (U+00A0) before ":" and the
// apostrophe U+2019.
func catalog() [numLocales]messages {
	return [numLocales]messages{
		English: {
			text: map[string]string{
				"signin.title":    "Sign in",
				"signin.heading":  "Sign in",
				"signin.lead":     "to continue to {client}",
				"signin.username": "User name",
				"signin.password": "Password",
				"signin.submit":   "Sign in",
				"signin.failed":   "Wrong user name or password.",

				"dev.badge":    "Development only",
				"dev.note":     "This server runs with --dev: any user name signs in and no password is checked. Never use it in production.",
				"dev.username": "User name (any)",

				"consent.title":    "Allow access",
				"consent.heading":  "{client} wants to access your account",
				"consent.user":     "Signed in as {user}",
				"consent.about":    "About the application",
				"consent.website":  "Website",
				"consent.policy":   "Privacy policy",
				"consent.tos":      "Terms of service",
				"consent.new":      "New permissions requested",
				"consent.granted":  "Already allowed",
				"consent.trust":    "Allow access only to applications you trust.",
				"consent.allow":    "Allow",
				"consent.deny":     "Deny",
				"consent.newtab":   "(opens in a new tab)",
				"error.detail":     "Technical details",
				"error.title":      "Error",
				"error.back":       "Go back to the application and start again.",
				"error.tryagain":   "Try again later.",
				"error.contactdev": "If this keeps happening, contact the application’s developer.",

				"error.unknown_client.title":     "Unknown application",
				"error.unknown_client.message":   "The application that sent you here is not registered with this server.",
				"error.bad_redirect_uri.title":   "Invalid return address",
				"error.bad_redirect_uri.message": "The application asked to send you back to an address it has not registered. For your safety, you were not redirected.",
				"error.invalid_request.title":    "Invalid request",
				"error.invalid_request.message":  "The sign-in request is incomplete or malformed.",
				"error.session_expired.title":    "Session expired",
				"error.session_expired.message":  "The sign-in took too long and has expired.",
				"error.csrf.title":               "The form could not be verified",
				"error.csrf.message":             "The form may be too old, or it was sent from another page.",
				"error.server_error.title":       "Something went wrong",
				"error.server_error.message":     "The server could not complete the request.",
			},
			plurals: map[string]forms{
				"signin.throttled": {
					plural.One:   "Too many attempts. Try again in {n} second.",
					plural.Other: "Too many attempts. Try again in {n} seconds.",
				},
			},
		},
		Czech: {
			text: map[string]string{
				"signin.title":    "Přihlášení",
				"signin.heading":  "Přihlaste se",
				"signin.lead":     "a pokračujte do aplikace {client}",
				"signin.username": "Uživatelské jméno",
				"signin.password": "Heslo",
				"signin.submit":   "Přihlásit se",
				"signin.failed":   "Nesprávné uživatelské jméno nebo heslo.",

				"dev.badge":    "Pouze pro vývoj",
				"dev.note":     "Tento server běží s volbou --dev: přihlásí se jakékoli uživatelské jméno a heslo se nekontroluje. Nikdy jej nepoužívejte v produkčním provozu.",
				"dev.username": "Uživatelské jméno (libovolné)",

				"consent.title":    "Povolit přístup",
				"consent.heading":  "Aplikace {client} žádá o přístup k vašemu účtu",
				"consent.user":     "Přihlášený uživatel: {user}",
				"consent.about":    "O aplikaci",
				"consent.website":  "Webové stránky",
				"consent.policy":   "Zásady ochrany osobních údajů",
				"consent.tos":      "Podmínky použití",
				"consent.new":      "Požadovaná nová oprávnění",
				"consent.granted":  "Již udělená oprávnění",
				"consent.trust":    "Přístup povolte jen aplikacím, kterým důvěřujete.",
				"consent.allow":    "Povolit",
				"consent.deny":     "Zamítnout",
				"consent.newtab":   "(otevře se na nové kartě)",
				"error.detail":     "Technické podrobnosti",
				"error.title":      "Chyba",
				"error.back":       "Vraťte se do aplikace a začněte znovu.",
				"error.tryagain":   "Zkuste to znovu později.",
				"error.contactdev": "Pokud se to opakuje, kontaktujte vývojáře aplikace.",

				"error.unknown_client.title":     "Neznámá aplikace",
				"error.unknown_client.message":   "Aplikace, která vás sem poslala, není na tomto serveru registrována.",
				"error.bad_redirect_uri.title":   "Neplatná návratová adresa",
				"error.bad_redirect_uri.message": "Aplikace žádá o návrat na adresu, kterou nemá registrovanou. Z bezpečnostních důvodů k přesměrování nedošlo.",
				"error.invalid_request.title":    "Neplatný požadavek",
				"error.invalid_request.message":  "Požadavek na přihlášení je neúplný nebo chybný.",
				"error.session_expired.title":    "Platnost relace vypršela",
				"error.session_expired.message":  "Přihlašování trvalo příliš dlouho a jeho platnost vypršela.",
				"error.csrf.title":               "Formulář nelze ověřit",
				"error.csrf.message":             "Formulář je možná příliš starý, nebo byl odeslán z jiné stránky.",
				"error.server_error.title":       "Něco se pokazilo",
				"error.server_error.message":     "Server nemohl požadavek dokončit.",
			},
			plurals: map[string]forms{
				"signin.throttled": {
					plural.One:   "Příliš mnoho pokusů. Zkuste to znovu za {n} sekundu.",
					plural.Few:   "Příliš mnoho pokusů. Zkuste to znovu za {n} sekundy.",
					plural.Many:  "Příliš mnoho pokusů. Zkuste to znovu za {n} sekundy.", // fractions only
					plural.Other: "Příliš mnoho pokusů. Zkuste to znovu za {n} sekund.",
				},
			},
		},
		Slovak: {
			text: map[string]string{
				"signin.title":    "Prihlásenie",
				"signin.heading":  "Prihláste sa",
				"signin.lead":     "a pokračujte do aplikácie {client}",
				"signin.username": "Používateľské meno",
				"signin.password": "Heslo",
				"signin.submit":   "Prihlásiť sa",
				"signin.failed":   "Nesprávne používateľské meno alebo heslo.",

				"dev.badge":    "Iba na vývoj",
				"dev.note":     "Tento server beží s voľbou --dev: prihlási sa akékoľvek používateľské meno a heslo sa nekontroluje. Nikdy ho nepoužívajte v produkčnej prevádzke.",
				"dev.username": "Používateľské meno (ľubovoľné)",

				"consent.title":    "Povoliť prístup",
				"consent.heading":  "Aplikácia {client} žiada o prístup k vášmu účtu",
				"consent.user":     "Prihlásený používateľ: {user}",
				"consent.about":    "O aplikácii",
				"consent.website":  "Webová stránka",
				"consent.policy":   "Zásady ochrany osobných údajov",
				"consent.tos":      "Podmienky používania",
				"consent.new":      "Požadované nové oprávnenia",
				"consent.granted":  "Už udelené oprávnenia",
				"consent.trust":    "Prístup povoľte len aplikáciám, ktorým dôverujete.",
				"consent.allow":    "Povoliť",
				"consent.deny":     "Zamietnuť",
				"consent.newtab":   "(otvorí sa na novej karte)",
				"error.detail":     "Technické podrobnosti",
				"error.title":      "Chyba",
				"error.back":       "Vráťte sa do aplikácie a začnite znova.",
				"error.tryagain":   "Skúste to znova neskôr.",
				"error.contactdev": "Ak sa to opakuje, kontaktujte vývojára aplikácie.",

				"error.unknown_client.title":     "Neznáma aplikácia",
				"error.unknown_client.message":   "Aplikácia, ktorá vás sem poslala, nie je na tomto serveri zaregistrovaná.",
				"error.bad_redirect_uri.title":   "Neplatná návratová adresa",
				"error.bad_redirect_uri.message": "Aplikácia žiada o návrat na adresu, ktorú nemá zaregistrovanú. Z bezpečnostných dôvodov k presmerovaniu nedošlo.",
				"error.invalid_request.title":    "Neplatná požiadavka",
				"error.invalid_request.message":  "Požiadavka na prihlásenie je neúplná alebo chybná.",
				"error.session_expired.title":    "Platnosť relácie vypršala",
				"error.session_expired.message":  "Prihlasovanie trvalo príliš dlho a jeho platnosť vypršala.",
				"error.csrf.title":               "Formulár nemožno overiť",
				"error.csrf.message":             "Formulár je možno príliš starý alebo bol odoslaný z inej stránky.",
				"error.server_error.title":       "Niečo sa pokazilo",
				"error.server_error.message":     "Server nemohol požiadavku dokončiť.",
			},
			plurals: map[string]forms{
				"signin.throttled": {
					plural.One:   "Príliš veľa pokusov. Skúste to znova o {n} sekundu.",
					plural.Few:   "Príliš veľa pokusov. Skúste to znova o {n} sekundy.",
					plural.Many:  "Príliš veľa pokusov. Skúste to znova o {n} sekundy.", // fractions only
					plural.Other: "Príliš veľa pokusov. Skúste to znova o {n} sekúnd.",
				},
			},
		},
		Russian: {
			text: map[string]string{
				"signin.title":    "Вход",
				"signin.heading":  "Вход",
				"signin.lead":     "для перехода в приложение {client}",
				"signin.username": "Имя пользователя",
				"signin.password": "Пароль",
				"signin.submit":   "Войти",
				"signin.failed":   "Неверное имя пользователя или пароль.",

				"dev.badge":    "Только для разработки",
				"dev.note":     "Сервер запущен с флагом --dev: вход выполняется под любым именем пользователя, пароль не проверяется. Никогда не используйте этот режим в рабочей среде.",
				"dev.username": "Имя пользователя (любое)",

				"consent.title":    "Разрешение доступа",
				"consent.heading":  "Приложение {client} запрашивает доступ к вашей учётной записи",
				"consent.user":     "Вы вошли как {user}",
				"consent.about":    "О приложении",
				"consent.website":  "Веб-сайт",
				"consent.policy":   "Политика конфиденциальности",
				"consent.tos":      "Условия использования",
				"consent.new":      "Запрашиваемые новые разрешения",
				"consent.granted":  "Уже предоставленные разрешения",
				"consent.trust":    "Разрешайте доступ только приложениям, которым доверяете.",
				"consent.allow":    "Разрешить",
				"consent.deny":     "Отклонить",
				"consent.newtab":   "(откроется в новой вкладке)",
				"error.detail":     "Технические подробности",
				"error.title":      "Ошибка",
				"error.back":       "Вернитесь в приложение и начните заново.",
				"error.tryagain":   "Повторите попытку позже.",
				"error.contactdev": "Если ошибка повторяется, обратитесь к разработчику приложения.",

				"error.unknown_client.title":     "Неизвестное приложение",
				"error.unknown_client.message":   "Приложение, которое направило вас сюда, не зарегистрировано на этом сервере.",
				"error.bad_redirect_uri.title":   "Недопустимый адрес возврата",
				"error.bad_redirect_uri.message": "Приложение запросило возврат на адрес, который оно не зарегистрировало. В целях безопасности перенаправление не выполнено.",
				"error.invalid_request.title":    "Некорректный запрос",
				"error.invalid_request.message":  "Запрос на вход неполон или содержит ошибки.",
				"error.session_expired.title":    "Сеанс истёк",
				"error.session_expired.message":  "Вход занял слишком много времени, и сеанс истёк.",
				"error.csrf.title":               "Не удалось проверить форму",
				"error.csrf.message":             "Возможно, форма устарела или была отправлена с другой страницы.",
				"error.server_error.title":       "Что-то пошло не так",
				"error.server_error.message":     "Серверу не удалось выполнить запрос.",
			},
			plurals: map[string]forms{
				"signin.throttled": {
					plural.One:   "Слишком много попыток входа. Повторите через {n} секунду.",
					plural.Few:   "Слишком много попыток входа. Повторите через {n} секунды.",
					plural.Many:  "Слишком много попыток входа. Повторите через {n} секунд.",
					plural.Other: "Слишком много попыток входа. Повторите через {n} секунды.", // fractions only
				},
			},
		},
		French: {
			text: map[string]string{
				"signin.title":    "Connexion",
				"signin.heading":  "Connexion",
				"signin.lead":     "pour accéder à {client}",
				"signin.username": "Nom d’utilisateur",
				"signin.password": "Mot de passe",
				"signin.submit":   "Se connecter",
				"signin.failed":   "Nom d’utilisateur ou mot de passe incorrect.",

				"dev.badge":    "Développement uniquement",
				"dev.note":     "Ce serveur tourne avec --dev\u00a0: n’importe quel nom d’utilisateur est accepté et aucun mot de passe n’est vérifié. Ne l’utilisez jamais en production.",
				"dev.username": "Nom d’utilisateur (au choix)",

				"consent.title":    "Autoriser l’accès",
				"consent.heading":  "{client} souhaite accéder à votre compte",
				"consent.user":     "Compte connecté\u00a0: {user}",
				"consent.about":    "À propos de l’application",
				"consent.website":  "Site web",
				"consent.policy":   "Politique de confidentialité",
				"consent.tos":      "Conditions d’utilisation",
				"consent.new":      "Nouvelles autorisations demandées",
				"consent.granted":  "Autorisations déjà accordées",
				"consent.trust":    "N’autorisez l’accès qu’aux applications de confiance.",
				"consent.allow":    "Autoriser",
				"consent.deny":     "Refuser",
				"consent.newtab":   "(s’ouvre dans un nouvel onglet)",
				"error.detail":     "Détails techniques",
				"error.title":      "Erreur",
				"error.back":       "Revenez à l’application et recommencez.",
				"error.tryagain":   "Réessayez plus tard.",
				"error.contactdev": "Si le problème persiste, contactez le développeur de l’application.",

				"error.unknown_client.title":     "Application inconnue",
				"error.unknown_client.message":   "L’application qui vous a envoyé ici n’est pas enregistrée sur ce serveur.",
				"error.bad_redirect_uri.title":   "Adresse de retour non valide",
				"error.bad_redirect_uri.message": "L’application demande à vous renvoyer vers une adresse qu’elle n’a pas enregistrée. Par sécurité, la redirection n’a pas eu lieu.",
				"error.invalid_request.title":    "Requête non valide",
				"error.invalid_request.message":  "La demande de connexion est incomplète ou mal formée.",
				"error.session_expired.title":    "Session expirée",
				"error.session_expired.message":  "La connexion a pris trop de temps et a expiré.",
				"error.csrf.title":               "Formulaire non vérifiable",
				"error.csrf.message":             "Le formulaire est peut-être trop ancien ou a été envoyé depuis une autre page.",
				"error.server_error.title":       "Une erreur s’est produite",
				"error.server_error.message":     "Le serveur n’a pas pu traiter la demande.",
			},
			plurals: map[string]forms{
				"signin.throttled": {
					plural.One:   "Trop de tentatives. Réessayez dans {n}\u00a0seconde.",
					plural.Other: "Trop de tentatives. Réessayez dans {n}\u00a0secondes.",
				},
			},
		},
	}
}
